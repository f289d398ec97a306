package io.vllmsnap.cli;

import io.vllmsnap.engine.Checkpointer;
import io.vllmsnap.engine.Manifest;
import io.vllmsnap.engine.SnapshotRequest;
import io.vllmsnap.engine.Timeouts;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;

@Command(name = "snapshot", mixinStandardHelpOptions = true,
        description = "Snapshot a running server into a new image directory. The process must be PID 1 of its own"
                + " PID namespace, as a container's init is (start it with `unshare --pid --fork --mount"
                + " --mount-proc setsid ...`).")
final class SnapshotCommand implements Callable<Integer> {
    @Option(names = "--pid", required = true, description = "host PID of the server's namespace init")
    long pid;
    @Option(names = "--out", required = true, description = "image directory to create (must not exist)")
    Path out;
    @Option(names = "--port", defaultValue = "8000", description = "vLLM HTTP port (default ${DEFAULT-VALUE})")
    int port;
    @Option(names = "--sleep-level", defaultValue = "0",
            description = "0 = transparent; 1 = vLLM sleep level 1 (drop KV cache); 2 = level 2 (drop weights too,"
                    + " re-read on wake): smaller image, faster restore (default ${DEFAULT-VALUE})")
    int sleepLevel;
    @Option(names = "--leave-running", description = "keep the source serving after the snapshot")
    boolean leaveRunning;
    @Option(names = "--tcp-established", description = "dump established TCP connections too")
    boolean tcp;
    @Option(names = "--file-locks", description = "dump file locks")
    boolean fileLocks;
    @Option(names = "--ext-unix-sk", description = "allow unix sockets connected outside the process tree")
    boolean extUnix;
    @Option(names = "--criu-cuda-plugin", paramLabel = "DIR", description = "let CRIU's own CUDA plugin (cuda_plugin.so"
            + " in DIR, which runs cuda-checkpoint from PATH) do the GPU steps inside criu dump instead of vllmsnap;"
            + " restore such an image with the same option")
    Path cudaPluginDir;
    @Option(names = "--criu-timeout", defaultValue = "600", description = "seconds for criu dump (default ${DEFAULT-VALUE})")
    long criuTimeout;

    @Override
    public Integer call() throws Exception {
        Timeouts d = Timeouts.defaults();
        Timeouts t = new Timeouts(d.http(), d.gpuLock(), Duration.ofSeconds(criuTimeout), d.ready(), d.queue());
        Checkpointer checkpointer = VllmsnapCli.checkpointer(cudaPluginDir); // refuses a bad --criu-cuda-plugin first
        System.out.println("snapshot of process " + pid + " → " + out);
        Manifest m = checkpointer.snapshot(new SnapshotRequest(pid, out, port, sleepLevel, leaveRunning,
                tcp, fileLocks, extUnix, t, "127.0.0.1"), VllmsnapCli.progress(System.out));
        System.out.printf("done: %s, %.1f MiB in %.2f s%n", out, m.sizeBytes() / 1048576.0, m.totalSeconds());
        return 0;
    }
}
