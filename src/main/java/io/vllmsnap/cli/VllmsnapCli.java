package io.vllmsnap.cli;

import io.vllmsnap.criu.Criu;
import io.vllmsnap.engine.Checkpointer;
import io.vllmsnap.cuda.CudaCheckpointer;
import io.vllmsnap.engine.GpuCheckpointer;
import io.vllmsnap.engine.JobLimiter;
import io.vllmsnap.engine.Progress;
import io.vllmsnap.engine.Restorer;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintStream;

/** The local command line: the engine on plain processes of this machine, no cluster, no Quarkus. */
@Command(name = "vllmsnap", mixinStandardHelpOptions = true, version = "vllmsnap 0.1.0",
        description = "Snapshot a warmed-up vLLM server with CRIU (and the GPU driver's checkpoint API) and restore it"
                + " in seconds. Needs root and CRIU >= 4.2 (hack/install-criu.sh).",
        subcommands = {RunCommand.class, SnapshotCommand.class, RestoreCommand.class, InspectCommand.class, DemoCommand.class,
                CommandLine.HelpCommand.class})
public final class VllmsnapCli {

    static Checkpointer checkpointer() {
        return new Checkpointer(Criu.fromEnvironment(), gpu(), new JobLimiter(1));
    }

    static Restorer restorer() {
        return new Restorer(Criu.fromEnvironment(), gpu(), new JobLimiter(1));
    }

    /** The driver binding where this node has a usable NVIDIA driver; the engine's no-GPU checkpointer otherwise. */
    static GpuCheckpointer gpu() {
        return CudaCheckpointer.forThisNode();
    }

    /** Prints each phase as it starts, with the time since the job began. */
    static Progress progress(PrintStream out) {
        long t0 = System.nanoTime();
        return (phase, detail) -> out.printf("  [%6.2f s] %-14s %s%n", (System.nanoTime() - t0) / 1e9, phase, detail);
    }

    public static void main(String[] args) {
        CommandLine cl = new CommandLine(new VllmsnapCli());
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            cmd.getErr().println("vllmsnap: " + ex.getMessage());
            return 1;
        });
        System.exit(cl.execute(args));
    }
}
