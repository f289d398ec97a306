package io.vllmsnap.cli;

import io.vllmsnap.engine.Manifest;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = "Show an image's manifest: source, CRIU version, GPUs, sizes, phase timings; checks every file.")
final class InspectCommand implements Callable<Integer> {
    @Parameters(paramLabel = "DIR", description = "image directory")
    Path image;

    @Override
    public Integer call() throws Exception {
        Manifest m = Manifest.read(image);
        System.out.println("image       " + image.toAbsolutePath());
        System.out.println("created     " + m.createdAt());
        System.out.println("source      PID " + m.source().pid() + " on " + m.source().hostname() + ": "
                + m.source().command());
        System.out.println("port        " + m.source().port() + ", sleep level " + m.source().sleepLevel()
                + (m.source().leaveRunning() ? ", source left running" : ", source stopped"));
        System.out.println("criu        " + m.criuVersion());
        System.out.println("gpus        " + (m.gpus().isEmpty() ? "none" : m.gpus()) + ", CUDA processes "
                + m.cudaProcesses());
        System.out.printf("size        %.1f MiB in %d files%n", m.sizeBytes() / 1048576.0, m.files().size());
        m.phaseSeconds().forEach((p, s) -> System.out.printf("  %-14s %7.3f s%n", p, s));
        System.out.printf("  %-14s %7.3f s%n", "total", m.totalSeconds());
        m.verifyFiles(image);
        System.out.println("files       complete");
        return 0;
    }
}
