package io.vllmsnap.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import io.vllmsnap.cuda.CudaCheckpointerTest.RecordingBackend;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The cuda-checkpoint stand-in against the contract of CRIU's CUDA plugin (plugins/cuda/cuda_plugin.c, CRIU 4.2.1): the
 * command lines it runs, and its output read the way the plugin reads it (stdout and stderr in one buffer; the restore
 * thread ID through atoi; the state by its prefix; success only by exit code 0).
 */
class CudaCheckpointCliTest {
    @TempDir
    Path dir;

    private FakeProc proc;
    private RecordingBackend backend;
    private final AtomicInteger driverLoads = new AtomicInteger();

    @BeforeEach
    void processes() {
        proc = new FakeProc(dir);
        proc.process(50, 1, "python3").tgid(50).maps("/usr/lib/x86_64-linux-gnu/libcuda.so.580.65.06");
        proc.process(57, 1, "python3").tgid(50).maps("/usr/lib/x86_64-linux-gnu/libcuda.so.580.65.06"); // a thread of 50
        proc.process(60, 1, "bash").tgid(60).maps("/usr/bin/bash");
        backend = new RecordingBackend();
    }

    /** What the plugin gets: one buffer with both streams, and the exit code. */
    private record Call(int exit, String stdout, String stderr) {
        String buffer() {
            return stdout + stderr;
        }
    }

    private Call call(String... args) {
        CudaCheckpointCli cli = new CudaCheckpointCli(proc.procFs(), () -> {
            driverLoads.incrementAndGet();
            return backend;
        }, new MpsDetector(proc.procFs(), Map.of()));
        CommandLine cl = CudaCheckpointCli.commandLine(cli);
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int exit = cl.execute(args);
        return new Call(exit, out.toString(), err.toString());
    }

    /** C's atoi, as get_cuda_restore_tid() applies it: leading blanks, a sign, digits; 0 when none. */
    private static int atoi(String s) {
        int i = 0;
        while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
            i++;
        }
        int sign = 1;
        if (i < s.length() && (s.charAt(i) == '-' || s.charAt(i) == '+')) {
            sign = s.charAt(i) == '-' ? -1 : 1;
            i++;
        }
        int n = 0;
        while (i < s.length() && Character.isDigit(s.charAt(i))) {
            n = n * 10 + (s.charAt(i++) - '0');
        }
        return sign * n;
    }

    /** get_task_state_enum(): strncmp against each state name; anything else is an unknown state. */
    private static String pluginState(String buffer) {
        for (String state : new String[] {"running", "locked", "checkpointed"}) {
            if (buffer.startsWith(state)) {
                return state;
            }
        }
        return "unknown";
    }

    @Test
    void helpNamesTheActionFlagSoThePluginEnablesItselfWithoutLoadingTheDriver() {
        // cuda_plugin_init(): `cuda-checkpoint -h` must exit 0 and its output contain "--action".
        Call c = call("-h");

        assertThat(c.exit()).isZero();
        assertThat(c.buffer()).contains("--action");
        assertThat(driverLoads).hasValue(0);
    }

    @Test
    void restoreThreadIdIsPrintedAloneSoAtoiReadsIt() {
        backend.restoreThreadId = 48213;

        Call c = call("--get-restore-tid", "--pid", "50");

        assertThat(c.exit()).isZero();
        assertThat(atoi(c.buffer())).isEqualTo(48213);
        assertThat(c.buffer().strip()).isEqualTo("48213");
        assertThat(backend.calls).containsExactly("restore-tid 50");
    }

    @Test
    void stateOfTheRestoreThreadIsItsProcessStateInThePluginsWords() {
        // cuda_plugin_pause_devices() asks for the state with the restore thread's ID, not the process's.
        for (ProcessGpuState s : new ProcessGpuState[] {ProcessGpuState.RUNNING, ProcessGpuState.LOCKED,
                ProcessGpuState.CHECKPOINTED}) {
            backend.state = s;
            Call c = call("--get-state", "--pid", "57");

            assertThat(c.exit()).as(s.name()).isZero();
            assertThat(pluginState(c.buffer())).isEqualTo(s.name().toLowerCase(java.util.Locale.ROOT));
        }
        assertThat(backend.statePids).containsOnly(50);
    }

    @Test
    void aFailedProcessIsNoStateThePluginAcceptsAsHealthy() {
        backend.state = ProcessGpuState.FAILED;

        Call c = call("--get-state", "--pid", "50");

        assertThat(c.exit()).isZero();
        assertThat(pluginState(c.buffer())).isEqualTo("unknown"); // the plugin then fails the dump: what it should do
    }

    @Test
    void actionsReachTheDriverWithTheLockTimeoutInMilliseconds() {
        // cuda_process_checkpoint_action(): --action A --pid P, and --timeout MS (criu's --timeout * 1000) for lock.
        assertThat(call("--action", "lock", "--pid", "50", "--timeout", "10000").exit()).isZero();
        assertThat(call("--action", "checkpoint", "--pid", "50").exit()).isZero();
        assertThat(call("--action", "restore", "--pid", "50").exit()).isZero();
        assertThat(call("--action", "unlock", "--pid", "50").exit()).isZero();
        assertThat(call("--action", "lock", "--pid", "50").exit()).isZero();

        assertThat(backend.calls).containsExactly("lock 50 10000", "checkpoint 50", "restore 50 pairs=0", "unlock 50",
                "lock 50 0");
    }

    @Test
    void aProcessWithoutCudaIsANonZeroExitWithoutLoadingTheDriver() {
        // The plugin asks for every process of the tree; a failure means "no need to pause/checkpoint this one".
        Call c = call("--get-restore-tid", "--pid", "60");

        assertThat(c.exit()).isEqualTo(1);
        assertThat(c.buffer()).contains("process 60 is not a CUDA process");
        assertThat(driverLoads).hasValue(0);
    }

    @Test
    void aMissingProcessIsNamed() {
        Call c = call("--action", "checkpoint", "--pid", "999");

        assertThat(c.exit()).isEqualTo(1);
        assertThat(c.stderr()).contains("no process with PID 999");
        assertThat(backend.calls).isEmpty();
    }

    @Test
    void badCommandLinesAreUsageErrorsThatNameTheProblem() {
        Call unknown = call("--action", "pause", "--pid", "50");
        assertThat(unknown.exit()).isEqualTo(2);
        assertThat(unknown.stderr()).contains("unknown --action 'pause'").contains("lock, checkpoint, restore or unlock");

        Call two = call("--action", "lock", "--get-state", "--pid", "50");
        assertThat(two.exit()).isEqualTo(2);
        assertThat(two.stderr()).contains("mutually exclusive");

        Call none = call("--pid", "50");
        assertThat(none.exit()).isEqualTo(2);
        assertThat(none.stderr()).contains("--action").contains("--get-state").contains("--get-restore-tid");

        Call noPid = call("--get-state");
        assertThat(noPid.exit()).isEqualTo(2);
        assertThat(noPid.stderr()).contains("--pid");

        Call badPid = call("--get-state", "--pid", "abc");
        assertThat(badPid.exit()).isEqualTo(2);
        assertThat(badPid.stderr()).contains("abc");

        Call negativeTimeout = call("--action", "lock", "--pid", "50", "--timeout", "-5");
        assertThat(negativeTimeout.exit()).isEqualTo(2);
        assertThat(negativeTimeout.stderr()).contains("--timeout");

        assertThat(backend.calls).isEmpty();
        assertThat(driverLoads).hasValue(0);
    }

    @Test
    void driverErrorsAreAFailedExitWithTheDriversReason() {
        backend.failCheckpoint = true;

        Call c = call("--action", "checkpoint", "--pid", "50");

        assertThat(c.exit()).isEqualTo(1);
        assertThat(c.stderr()).contains("CUDA_ERROR_OUT_OF_MEMORY");
    }

    @Test
    void noDriverIsAFailedExitThatSaysSo() {
        CudaCheckpointCli cli = new CudaCheckpointCli(proc.procFs(), () -> {
            throw new CudaUnavailableException("libcuda.so.1 not found: no NVIDIA driver on this machine");
        }, new MpsDetector(proc.procFs(), Map.of()));
        StringWriter err = new StringWriter();
        CommandLine cl = CudaCheckpointCli.commandLine(cli);
        cl.setErr(new PrintWriter(err, true));

        assertThat(cl.execute("--action", "lock", "--pid", "50")).isEqualTo(1);
        assertThat(err.toString()).contains("no NVIDIA driver");
    }

    @Test
    void anMpsClientIsRefusedBeforeTheDriverLocksIt() {
        proc.process(40, 1, "nvidia-cuda-mps").cmdline("nvidia-cuda-mps-control", "-d");

        Call c = call("--action", "lock", "--pid", "50", "--timeout", "10000");

        assertThat(c.exit()).isEqualTo(1);
        assertThat(c.stderr()).contains("MPS");
        assertThat(backend.calls).isEmpty();
    }
}
