package io.vllmsnap.cli;

import io.vllmsnap.engine.RestoreRequest;
import io.vllmsnap.engine.Restorer;
import io.vllmsnap.engine.RestoreResult;
import io.vllmsnap.engine.Timeouts;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "restore", mixinStandardHelpOptions = true,
        description = "Restore an image; the server comes back detached, in new PID and mount namespaces, on the port"
                + " it had. Prints each phase and the time from start to first token.",
        footer = {"%nEnvironment:",
                "  VLLMSNAP_MAP_FILL     on (default) or off: map restored memory from the",
                "                        image copy-on-write instead of copying it (our CRIU",
                "                        patch); the image must then stay unchanged while the",
                "                        server runs, and the server cannot be snapshotted",
                "  VLLMSNAP_THP_FILL     auto (default), on or off: fill restored memory",
                "                        through 2 MiB pages (our CRIU patch); auto measures",
                "                        once whether this host is faster that way",
                "  CRIU_LAZY_WINDOW_KIB  with --lazy-pages: KiB served per fault (default 2048;",
                "                        4 is upstream CRIU's one page)",
                "  VLLMSNAP_CRIU         the criu binary (default: criu on PATH)"})
final class RestoreCommand implements Callable<Integer> {
    @Parameters(paramLabel = "DIR", description = "image directory")
    Path image;
    @Option(names = "--rootfs", defaultValue = "/var/lib/vllmsnap/rootfs",
            description = "where / is bind-mounted for CRIU's --root (default ${DEFAULT-VALUE})")
    Path rootfs;
    @Option(names = "--stage-readers", defaultValue = "4",
            description = "parallel readers pulling the image into the page cache; 0 = none (default ${DEFAULT-VALUE})")
    int readers;
    @Option(names = "--no-first-token", description = "stop at /health instead of asking for one token")
    boolean noFirstToken;
    @Option(names = "--lazy-pages", description = "run the server before its memory is copied: pages arrive on first"
            + " touch and in the background (criu lazy-pages); restore time no longer grows with the image")
    boolean lazyPages;
    @Option(names = "--criu-cuda-plugin", paramLabel = "DIR", description = "for an image snapshot with this option:"
            + " CRIU's own CUDA plugin (cuda_plugin.so in DIR, which runs cuda-checkpoint from PATH) restores the GPU"
            + " state inside criu restore")
    Path cudaPluginDir;

    @Override
    public Integer call() throws Exception {
        Restorer restorer = VllmsnapCli.restorer(cudaPluginDir); // refuses a bad --criu-cuda-plugin first
        System.out.println("restore of " + image);
        RestoreResult r = restorer.restore(new RestoreRequest(image, rootfs, readers, !noFirstToken,
                lazyPages, Timeouts.defaults(), null, "127.0.0.1"), VllmsnapCli.progress(System.out));
        r.phaseSeconds().forEach((phase, s) -> System.out.printf("  %-14s %7.3f s%n", phase, s));
        System.out.printf("restored: PID %d, %s in %.3f s%n", r.pid(),
                noFirstToken ? "ready" : "first token", r.totalSeconds());
        return 0;
    }
}
