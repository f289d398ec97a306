package io.vllmsnap.cli;

import io.vllmsnap.criu.Criu;
import io.vllmsnap.engine.Checkpointer;
import io.vllmsnap.cuda.CudaCheckpointBinary;
import io.vllmsnap.cuda.CudaCheckpointer;
import io.vllmsnap.engine.CriuPluginGpuCheckpointer;
import io.vllmsnap.engine.GpuCheckpointer;
import io.vllmsnap.engine.JobLimiter;
import io.vllmsnap.engine.Progress;
import io.vllmsnap.engine.Restorer;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

/** The local command line: the engine on plain processes of this machine, no cluster, no Quarkus. */
@Command(name = "vllmsnap", mixinStandardHelpOptions = true, version = "vllmsnap 0.1.0",
        description = "Snapshot a warmed-up vLLM server with CRIU (and the GPU driver's checkpoint API) and restore it"
                + " in seconds. Needs root and CRIU >= 4.2 (hack/install-criu.sh).",
        subcommands = {RunCommand.class, SnapshotCommand.class, RestoreCommand.class, InspectCommand.class, DemoCommand.class,
                CommandLine.HelpCommand.class})
public final class VllmsnapCli {
    /** The file CRIU's CUDA plugin is built as (hack/install-criu.sh). */
    static final String CUDA_PLUGIN = "cuda_plugin.so";

    static Checkpointer checkpointer() {
        return checkpointer(null);
    }

    static Restorer restorer() {
        return restorer(null);
    }

    /** With {@code cudaPluginDir} set, CRIU's CUDA plugin from there does the GPU steps instead of the engine. */
    static Checkpointer checkpointer(Path cudaPluginDir) {
        return new Checkpointer(criu(cudaPluginDir), gpu(cudaPluginDir), new JobLimiter(1));
    }

    static Restorer restorer(Path cudaPluginDir) {
        return new Restorer(criu(cudaPluginDir), gpu(cudaPluginDir), new JobLimiter(1));
    }

    private static Criu criu(Path cudaPluginDir) {
        if (cudaPluginDir == null) {
            return Criu.fromEnvironment();
        }
        if (!Files.isRegularFile(cudaPluginDir.resolve(CUDA_PLUGIN))) {
            throw new IllegalArgumentException("--criu-cuda-plugin: no " + CUDA_PLUGIN + " in " + cudaPluginDir
                    + " (hack/install-criu.sh builds it into ~/.cache/vllmsnap/criu/plugins; the GPU bundle has it in"
                    + " criu/plugins)");
        }
        if (CudaCheckpointBinary.findOnPath(System.getenv("PATH")).isEmpty()) {
            throw new IllegalArgumentException("--criu-cuda-plugin: CRIU's CUDA plugin runs " + CudaCheckpointBinary.BINARY
                    + " from PATH and there is none (vllmsnap's stand-in for it is bin/cuda-checkpoint of the GPU"
                    + " bundle)");
        }
        return Criu.fromEnvironment().withPluginDir(cudaPluginDir.toAbsolutePath());
    }

    private static GpuCheckpointer gpu(Path cudaPluginDir) {
        return cudaPluginDir == null ? gpu() : new CriuPluginGpuCheckpointer(gpu());
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
        System.exit(commandLine().execute(args));
    }

    /** The CLI with its error handling: a failure is one line on stderr and exit code 1. */
    static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new VllmsnapCli());
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            cmd.getErr().println("vllmsnap: " + ex.getMessage());
            return 1;
        });
        return cl;
    }
}
