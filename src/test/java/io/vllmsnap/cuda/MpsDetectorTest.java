package io.vllmsnap.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MpsDetectorTest {
    @TempDir
    Path dir;

    private MpsDetector detector(FakeProc proc, Map<String, String> env) {
        return new MpsDetector(proc.procFs(), env);
    }

    @Test
    void findsControlDaemonAndServerByExecutableName() {
        FakeProc proc = new FakeProc(dir);
        proc.process(1, 0, "init").cmdline("/sbin/init");
        proc.process(40, 1, "nvidia-cuda-mps").cmdline("/usr/bin/nvidia-cuda-mps-control", "-d");
        proc.process(41, 40, "nvidia-cuda-mps").cmdline("nvidia-cuda-mps-server");
        proc.process(50, 1, "python3").cmdline("python3", "server.py");

        MpsDetector.DaemonStatus status = detector(proc, Map.of()).daemon();

        assertThat(status.running()).isTrue();
        assertThat(status.daemonPids()).containsExactly(40, 41);
        assertThat(status.pipeDirectory()).isEqualTo("/tmp/nvidia-mps");
    }

    @Test
    void ignoresAQuitDaemonThatWasNotReapedYet() {
        FakeProc proc = new FakeProc(dir);
        // A zombie has an empty cmdline; only its (cut) comm still names MPS.
        proc.process(40, 1, "nvidia-cuda-mps").stat("nvidia-cuda-mps", "Z", 1);

        assertThat(detector(proc, Map.of()).daemon().running()).isFalse();
    }

    @Test
    void clientSeenThroughMappingsOpenFilesOrSocketsUnderThePipeDirectory() {
        FakeProc proc = new FakeProc(dir);
        proc.process(10, 1, "a").maps("/usr/lib/libcuda.so.1", "/tmp/nvidia-mps/shm_region");
        proc.process(11, 1, "b").maps("/usr/lib/libcuda.so.1").fd(3, "/tmp/nvidia-mps/control");
        proc.process(12, 1, "c").maps("/usr/lib/libcuda.so.1").fd(7, "socket:[777]")
                .unixSocket("777", "/tmp/nvidia-mps/control");
        proc.process(13, 1, "d").maps("/usr/lib/libcuda.so.1").fd(7, "socket:[888]").unixSocket("888", "");
        MpsDetector d = detector(proc, Map.of());

        assertThat(d.clientEvidence(10)).containsExactly("maps /tmp/nvidia-mps/shm_region");
        assertThat(d.clientEvidence(11)).containsExactly("open file /tmp/nvidia-mps/control");
        assertThat(d.clientEvidence(12)).containsExactly("unix socket /tmp/nvidia-mps/control");
        assertThat(d.clientEvidence(13)).isEmpty();
    }

    @Test
    void pipeDirectoryFromTheEnvironmentOfTheAgentOrOfTheProcess() {
        FakeProc proc = new FakeProc(dir);
        proc.process(10, 1, "a").fd(3, "/run/mps/control");
        proc.process(11, 1, "b").fd(3, "/srv/mps-b/control").environ("HOME=/root", "CUDA_MPS_PIPE_DIRECTORY=/srv/mps-b/");

        assertThat(detector(proc, Map.of("CUDA_MPS_PIPE_DIRECTORY", "/run/mps/")).clientEvidence(10))
                .containsExactly("open file /run/mps/control");
        assertThat(detector(proc, Map.of()).clientEvidence(10)).isEmpty();
        assertThat(detector(proc, Map.of()).clientEvidence(11)).containsExactly("open file /srv/mps-b/control");
    }

    @Test
    void refusesEveryProcessWhileADaemonRunsAndNamesIt() {
        // As seen on the H100: a real client showed nothing MPS-specific in /proc, so the daemon decides.
        FakeProc proc = new FakeProc(dir);
        proc.process(40, 1, "nvidia-cuda-mps").cmdline("nvidia-cuda-mps-control", "-d");
        proc.process(50, 1, "python3").maps("/usr/lib/libcuda.so.1").fd(4, "/dev/nvidia0");

        assertThatThrownBy(() -> detector(proc, Map.of()).requireNotMpsClient(50))
                .isInstanceOf(MpsClientException.class)
                .hasMessageContaining("process 50 is a client of an NVIDIA MPS daemon")
                .hasMessageContaining("pids [40]")
                .hasMessageContaining("run the server without MPS");
    }

    @Test
    void refusesAClientByItsEvidenceAndAcceptsAProcessWithoutMps() {
        FakeProc proc = new FakeProc(dir);
        proc.process(50, 1, "python3").maps("/usr/lib/libcuda.so.1").fd(3, "/tmp/nvidia-mps/control");
        proc.process(51, 1, "python3").maps("/usr/lib/libcuda.so.1").fd(4, "/dev/nvidia0");
        MpsDetector d = detector(proc, Map.of());

        assertThatThrownBy(() -> d.requireNotMpsClient(50)).isInstanceOf(MpsClientException.class)
                .hasMessageContaining("open file /tmp/nvidia-mps/control");
        assertThatCode(() -> d.requireNotMpsClient(51)).doesNotThrowAnyException();
    }
}
