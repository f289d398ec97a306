package io.vllmsnap.cuda;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Fallback backend: NVIDIA's cuda-checkpoint utility, when the user installed it on PATH (vllmsnap never ships it).
 * Used where libcuda cannot be bound in this process but the utility can still reach the driver.
 */
public final class CudaCheckpointBinary implements GpuCheckpointBackend {
    public static final String BINARY = "cuda-checkpoint";

    private final Path binary;
    private final CommandRunner runner;
    private final Duration timeout;

    public CudaCheckpointBinary(Path binary, CommandRunner runner, Duration timeout) {
        this.binary = binary;
        this.runner = runner;
        this.timeout = timeout;
    }

    /** Finds cuda-checkpoint on the given PATH value (directories separated by ':'). */
    public static Optional<Path> findOnPath(String pathVariable) {
        if (pathVariable == null || pathVariable.isBlank()) {
            return Optional.empty();
        }
        for (String dir : pathVariable.split(":")) {
            if (dir.isEmpty()) {
                continue;
            }
            Path candidate = Path.of(dir, BINARY);
            if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
                return Optional.of(candidate);
            }
        }
        return Optional.empty();
    }

    public Path binary() {
        return binary;
    }

    @Override
    public String name() {
        return BINARY;
    }

    /** The utility does not report the CUDA driver version; 0 means unknown. */
    @Override
    public int driverVersion() {
        return 0;
    }

    @Override
    public void lock(int pid, int timeoutMs) {
        List<String> extra = new ArrayList<>();
        if (timeoutMs > 0) {
            extra.add("--timeout");
            extra.add(Integer.toString(timeoutMs));
        }
        action("lock", pid, extra);
    }

    @Override
    public void checkpoint(int pid) {
        action("checkpoint", pid, List.of());
    }

    @Override
    public void restore(int pid, List<GpuPair> gpuPairs) {
        List<String> extra = new ArrayList<>();
        if (!gpuPairs.isEmpty()) {
            // The utility takes the map as old=new pairs separated by commas.
            StringBuilder map = new StringBuilder();
            for (GpuPair p : gpuPairs) {
                if (!map.isEmpty()) {
                    map.append(',');
                }
                map.append(GpuPair.formatUuid(p.oldUuid())).append('=').append(GpuPair.formatUuid(p.newUuid()));
            }
            extra.add("--device-map");
            extra.add(map.toString());
        }
        action("restore", pid, extra);
    }

    @Override
    public void unlock(int pid) {
        action("unlock", pid, List.of());
    }

    @Override
    public ProcessGpuState state(int pid) {
        CommandRunner.Result r = runner.run(List.of(binary.toString(), "--get-state", "--pid", Integer.toString(pid)), timeout);
        if (r.exitCode() != 0) {
            throw failure("get-state", pid, r);
        }
        try {
            return ProcessGpuState.parse(r.output());
        } catch (IllegalArgumentException e) {
            throw new CudaException(BINARY + " --get-state", BINARY + " --get-state --pid " + pid
                    + " printed something unexpected: " + r.output().strip());
        }
    }

    @Override
    public int restoreThreadId(int pid) {
        CommandRunner.Result r = runner.run(List.of(binary.toString(), "--get-restore-tid", "--pid", Integer.toString(pid)),
                timeout);
        if (r.exitCode() != 0) {
            throw failure("get-restore-tid", pid, r);
        }
        try {
            return Integer.parseInt(r.output().strip());
        } catch (NumberFormatException e) {
            throw new CudaException(BINARY + " --get-restore-tid", BINARY + " --get-restore-tid --pid " + pid
                    + " printed something unexpected: " + r.output().strip());
        }
    }

    /** Builds the argument array of one --action call; public for tests of the command line we send. */
    public List<String> actionCommand(String action, int pid, List<String> extra) {
        List<String> cmd = new ArrayList<>(List.of(binary.toString(), "--action", action, "--pid", Integer.toString(pid)));
        cmd.addAll(extra);
        return cmd;
    }

    private void action(String action, int pid, List<String> extra) {
        CommandRunner.Result r = runner.run(actionCommand(action, pid, extra), timeout);
        if (r.exitCode() != 0) {
            throw failure(action, pid, r);
        }
    }

    private CudaException failure(String action, int pid, CommandRunner.Result r) {
        String out = r.output().strip();
        String flag = action.startsWith("get-") ? "--" + action : "--action " + action;
        return new CudaException(BINARY + " " + action, BINARY + " " + flag + " --pid " + pid
                + " failed (exit " + r.exitCode() + ")" + (out.isEmpty() ? "" : ": " + out));
    }
}
