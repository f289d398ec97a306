package io.vllmsnap.cuda;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vllmsnap.engine.GpuCheckpointException;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.function.Supplier;
import picocli.CommandLine;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * vllmsnap's stand-in for NVIDIA's {@code cuda-checkpoint} utility, over the FFM binding of the driver, so that CRIU's
 * own CUDA plugin (plugins/cuda of CRIU 4.x) can run where NVIDIA's binary is absent. It accepts the command lines the
 * plugin runs and prints what the plugin parses (the plugin reads stdout and stderr together):
 * <ul>
 * <li>{@code -h}: usage that names {@code --action} (the plugin disables itself otherwise);</li>
 * <li>{@code --get-restore-tid --pid P}: the driver's restore thread ID, alone, in decimal; a non-zero exit tells the
 * plugin that P is no CUDA process;</li>
 * <li>{@code --get-state --pid TID}: {@code running}, {@code locked}, {@code checkpointed} or {@code failed}; the
 * plugin passes the restore thread's ID here, which stands for its process;</li>
 * <li>{@code --action lock|checkpoint|restore|unlock --pid P [--timeout MS]}: exit 0 on success, else a message.</li>
 * </ul>
 * Exit codes: 0 done, 1 refused or failed (no such process, no CUDA process, driver error), 2 bad command line.
 */
@Command(name = "cuda-checkpoint", description = "Checkpoint and restore the GPU state of a CUDA process through the"
        + " NVIDIA driver (vllmsnap's stand-in for NVIDIA's utility, with the command line CRIU's CUDA plugin uses).")
public final class CudaCheckpointCli implements Callable<Integer> {
    /** When set, each call appends one JSON line (arguments, exit, times) to this file: where the plugin's time goes. */
    public static final String CALL_LOG_VARIABLE = "VLLMSNAP_CUDA_CHECKPOINT_LOG";
    static final List<String> ACTIONS = List.of("lock", "checkpoint", "restore", "unlock");

    /** Exactly one thing to do. */
    static final class What {
        @Option(names = "--action", paramLabel = "ACTION", description = "lock, checkpoint, restore or unlock")
        String action;

        @Option(names = "--get-state", description = "print the process's state: running, locked, checkpointed, failed")
        boolean getState;

        @Option(names = "--get-restore-tid", description = "print the ID of the thread the driver restores the process with")
        boolean getRestoreTid;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    What what;

    @Option(names = "--pid", required = true, description = "the process (for --get-state also one of its threads)")
    int pid;

    @Option(names = "--timeout", paramLabel = "MS", defaultValue = "0",
            description = "lock: how long to wait for running CUDA work, in ms; 0 waits as long as it takes")
    int timeoutMs;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "show this help")
    boolean help;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** Times of this call for the call log: loading and initialising the driver, then the step itself (-1: not reached). */
    private double loadMs = -1;
    private double stepMs = -1;

    private final ProcFs proc;
    private final Supplier<GpuCheckpointBackend> backend;
    private final MpsDetector mps;

    public CudaCheckpointCli(ProcFs proc, Supplier<GpuCheckpointBackend> backend, MpsDetector mps) {
        this.proc = proc;
        this.backend = backend;
        this.mps = mps;
    }

    public static void main(String[] args) {
        long start = System.nanoTime();
        // The driver only, never GpuBackendSelector: its fallback is cuda-checkpoint on PATH, which may be this command.
        CudaCheckpointCli cli = new CudaCheckpointCli(ProcFs.system(), CudaDriver::load, MpsDetector.system());
        int exit = commandLine(cli).execute(args);
        cli.appendCallLog(System.getenv(CALL_LOG_VARIABLE), args, exit, start);
        System.exit(exit);
    }

    /** The command with short error messages (the plugin logs at most 127 bytes of what it reads). */
    public static CommandLine commandLine(CudaCheckpointCli cli) {
        CommandLine cl = new CommandLine(cli);
        cl.setParameterExceptionHandler((ex, args) -> {
            ex.getCommandLine().getErr().println("cuda-checkpoint: " + ex.getMessage() + " (see cuda-checkpoint -h)");
            return 2;
        });
        return cl;
    }

    @Override
    public Integer call() {
        if (what.action != null && !ACTIONS.contains(what.action)) {
            throw usage("unknown --action '" + what.action + "': expected lock, checkpoint, restore or unlock");
        }
        if (pid <= 0) {
            throw usage("--pid must be a process ID, was " + pid);
        }
        if (timeoutMs < 0) {
            throw usage("--timeout must be >= 0 ms, was " + timeoutMs);
        }
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        // A thread's /proc entry exists too: --get-state is given the restore thread's ID.
        Optional<Integer> process = proc.exists(pid) ? proc.threadGroup(pid) : Optional.empty();
        if (process.isEmpty()) {
            err.println("cuda-checkpoint: no process with PID " + pid);
            return 1;
        }
        int target = process.get();
        CudaProcesses processes = new CudaProcesses(proc);
        // Checked here so the driver is not loaded for the many processes of a tree that have no GPU state.
        if (!processes.isCudaProcess(target)) {
            err.println("cuda-checkpoint: process " + target + " is not a CUDA process (it neither maps libcuda nor"
                    + " holds an NVIDIA device open)");
            return 1;
        }
        try {
            long t0 = System.nanoTime();
            GpuCheckpointBackend driver = backend.get();
            long t1 = System.nanoTime();
            loadMs = (t1 - t0) / 1e6;
            CudaCheckpointer steps = new CudaCheckpointer(driver, Optional.empty(), mps, processes);
            if (what.getRestoreTid) {
                out.println(driver.restoreThreadId(target));
            } else if (what.getState) {
                out.println(steps.state(target).name().toLowerCase(Locale.ROOT));
            } else {
                switch (what.action) {
                    case "lock" -> {
                        steps.checkSupported(target); // MPS clients: refused before the driver is asked
                        driver.lock(target, timeoutMs);
                    }
                    case "checkpoint" -> steps.checkpoint(target);
                    case "restore" -> steps.restore(target);
                    default -> steps.unlock(target);
                }
            }
            out.flush();
            stepMs = (System.nanoTime() - t1) / 1e6;
            return 0;
        } catch (GpuCheckpointException | CudaException e) {
            err.println("cuda-checkpoint: " + e.getMessage());
            return 1;
        }
    }

    private CommandLine.ParameterException usage(String message) {
        return new CommandLine.ParameterException(spec.commandLine(), message);
    }

    private void appendCallLog(String file, String[] args, int exit, long mainStartNanos) {
        if (file == null || file.isBlank()) {
            return;
        }
        long now = System.nanoTime();
        ObjectMapper json = new ObjectMapper();
        ObjectNode line = json.createObjectNode();
        line.put("at", Instant.now().toString());
        line.putPOJO("args", args);
        line.put("exit", exit);
        // main() to exit; the JVM's own start comes before (a separate measure: time `cuda-checkpoint -h`).
        line.put("mainMs", (now - mainStartNanos) / 1e6);
        line.put("driverLoadMs", loadMs);
        line.put("stepMs", stepMs);
        try {
            Files.writeString(Path.of(file), line + "\n", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            // diagnostics only: the call itself is done
        }
    }
}
