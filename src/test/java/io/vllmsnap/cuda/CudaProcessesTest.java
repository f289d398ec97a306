package io.vllmsnap.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CudaProcessesTest {
    @TempDir
    Path dir;

    @Test
    void cudaProcessesOfATreeByDriverMappingOrDeviceFile() {
        FakeProc proc = new FakeProc(dir);
        proc.process(1, 0, "init");
        proc.process(100, 1, "bash").maps("/usr/bin/bash");
        proc.process(101, 100, "python3 (api)").maps("/usr/lib/x86_64-linux-gnu/libcuda.so.580.159.04");
        proc.process(102, 100, "worker").maps("/usr/lib/libc.so.6").fd(5, "/dev/nvidia0");
        proc.process(103, 102, "tokenizer").maps("/usr/lib/libc.so.6").fd(1, "/dev/null");
        proc.process(200, 1, "other").maps("/usr/lib/libcuda.so.1");
        CudaProcesses p = new CudaProcesses(proc.procFs());

        assertThat(p.tree(100)).containsExactly(100, 101, 102, 103);
        assertThat(p.cudaProcessesInTree(100)).containsExactly(101, 102);
        assertThat(p.isCudaProcess(200)).isTrue();
        assertThat(p.isCudaProcess(103)).isFalse();
    }

    @Test
    void aMissingProcessIsNoCudaProcessAndHasNoTree() {
        CudaProcesses p = new CudaProcesses(new FakeProc(dir).procFs());

        assertThat(p.isCudaProcess(4242)).isFalse();
        assertThat(p.tree(4242)).isEmpty();
    }

    @Test
    void realProcFsSeesThisJvmAsNoCudaProcess() {
        CudaProcesses p = new CudaProcesses(ProcFs.system());
        int self = (int) ProcessHandle.current().pid();

        assertThat(p.tree(self)).startsWith(self);
        assertThat(p.isCudaProcess(self)).isFalse();
    }
}
