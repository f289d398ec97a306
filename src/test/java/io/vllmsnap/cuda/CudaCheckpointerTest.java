package io.vllmsnap.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vllmsnap.engine.GpuCheckpointException;
import io.vllmsnap.engine.GpuCheckpointer.GpuProcessState;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CudaCheckpointerTest {
    @TempDir
    Path dir;

    /** Records calls; fails the checkpoint step with a driver error when asked to. */
    static final class RecordingBackend implements GpuCheckpointBackend {
        final List<String> calls = new ArrayList<>();
        boolean failCheckpoint;
        ProcessGpuState state = ProcessGpuState.RUNNING;
        final List<Integer> statePids = new ArrayList<>();

        @Override
        public String name() {
            return "recording";
        }

        @Override
        public int driverVersion() {
            return 13000;
        }

        @Override
        public void lock(int pid, int timeoutMs) {
            calls.add("lock " + pid + " " + timeoutMs);
        }

        @Override
        public void checkpoint(int pid) {
            calls.add("checkpoint " + pid);
            if (failCheckpoint) {
                throw new CudaException("cuCheckpointProcessCheckpoint(pid " + pid + ")", 2, "CUDA_ERROR_OUT_OF_MEMORY", "");
            }
        }

        @Override
        public void restore(int pid, List<GpuPair> gpuPairs) {
            calls.add("restore " + pid + " pairs=" + gpuPairs.size());
        }

        @Override
        public void unlock(int pid) {
            calls.add("unlock " + pid);
        }

        @Override
        public ProcessGpuState state(int pid) {
            statePids.add(pid);
            return state;
        }

        int restoreThreadId = 4242;

        @Override
        public int restoreThreadId(int pid) {
            calls.add("restore-tid " + pid);
            return restoreThreadId;
        }
    }

    private CudaCheckpointer checkpointer(FakeProc proc, RecordingBackend backend) {
        return new CudaCheckpointer(backend, Optional.empty(), new MpsDetector(proc.procFs(), Map.of()),
                new CudaProcesses(proc.procFs()));
    }

    @Test
    void stepsReachTheBackendInOrderWithTheTimeoutInMilliseconds() throws Exception {
        FakeProc proc = new FakeProc(dir);
        proc.process(50, 1, "python3").maps("/usr/lib/libcuda.so.1");
        RecordingBackend backend = new RecordingBackend();
        CudaCheckpointer c = checkpointer(proc, backend);

        c.lock(50, Duration.ofSeconds(12));
        c.checkpoint(50);
        c.restore(50);
        c.unlock(50);
        backend.state = ProcessGpuState.CHECKPOINTED;

        assertThat(backend.calls).containsExactly("lock 50 12000", "checkpoint 50", "restore 50 pairs=0", "unlock 50");
        assertThat(c.state(50)).isEqualTo(GpuProcessState.CHECKPOINTED);
        assertThat(c.isCudaProcess(50)).isTrue();
        assertThat(c.gpus()).isEmpty();
    }

    @Test
    void anMpsClientIsRefusedBeforeTheDriverIsTouched() {
        FakeProc proc = new FakeProc(dir);
        proc.process(40, 1, "nvidia-cuda-mps").cmdline("nvidia-cuda-mps-control", "-d");
        proc.process(50, 1, "python3").maps("/usr/lib/libcuda.so.1");
        RecordingBackend backend = new RecordingBackend();
        CudaCheckpointer c = checkpointer(proc, backend);

        assertThatThrownBy(() -> c.lock(50, Duration.ofSeconds(5))).isInstanceOf(GpuCheckpointException.class)
                .hasMessageContaining("client of an NVIDIA MPS daemon");
        assertThat(backend.calls).isEmpty();
    }

    @Test
    void driverErrorsReachTheEngineAsCheckedExceptionsWithTheDriverName() {
        FakeProc proc = new FakeProc(dir);
        RecordingBackend backend = new RecordingBackend();
        backend.failCheckpoint = true;
        CudaCheckpointer c = checkpointer(proc, backend);

        assertThatThrownBy(() -> c.checkpoint(50)).isInstanceOf(GpuCheckpointException.class)
                .hasMessageContaining("cuCheckpointProcessCheckpoint(pid 50) failed: CUDA_ERROR_OUT_OF_MEMORY (2)")
                .hasCauseInstanceOf(CudaException.class);
    }

    @Test
    void invalidPidIsRejected() {
        CudaCheckpointer c = checkpointer(new FakeProc(dir), new RecordingBackend());
        assertThatThrownBy(() -> c.unlock(0)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not a process id");
    }
}
