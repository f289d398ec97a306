package io.vllmsnap.cuda;

import io.vllmsnap.engine.GpuCheckpointException;
import io.vllmsnap.engine.GpuCheckpointer;
import io.vllmsnap.engine.NoGpuCheckpointer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The engine's {@link GpuCheckpointer} on a node with an NVIDIA driver: each step goes to the selected backend
 * (libcuda through FFM, or the cuda-checkpoint utility), and MPS clients are refused before anything is locked.
 */
public final class CudaCheckpointer implements GpuCheckpointer {
    private final GpuCheckpointBackend backend;
    private final Optional<CudaDriver> driver;
    private final MpsDetector mps;
    private final CudaProcesses processes;

    public CudaCheckpointer(GpuCheckpointBackend backend, Optional<CudaDriver> driver, MpsDetector mps,
            CudaProcesses processes) {
        this.backend = backend;
        this.driver = driver;
        this.mps = mps;
        this.processes = processes;
    }

    /**
     * The checkpointer for this node: a CudaCheckpointer when the checkpoint API is reachable, else the engine's
     * NoGpuCheckpointer (a node without a driver has no CUDA processes to checkpoint).
     */
    public static GpuCheckpointer forThisNode() {
        try {
            GpuBackendSelector.Selection s = GpuBackendSelector.system().select();
            return new CudaCheckpointer(s.backend(), s.driver(), MpsDetector.system(),
                    new CudaProcesses(ProcFs.system()));
        } catch (CudaUnavailableException e) {
            return new NoGpuCheckpointer();
        }
    }

    public GpuCheckpointBackend backend() {
        return backend;
    }

    @Override
    public boolean isCudaProcess(long pid) {
        return processes.isCudaProcess(toInt(pid));
    }

    @Override
    public void checkSupported(long pid) throws GpuCheckpointException {
        try {
            mps.requireNotMpsClient(toInt(pid));
        } catch (MpsClientException e) {
            throw new GpuCheckpointException(e.getMessage(), e);
        }
    }

    @Override
    public void lock(long pid, Duration timeout) throws GpuCheckpointException {
        checkSupported(pid);
        long ms = Math.min(Integer.MAX_VALUE, Math.max(1, timeout.toMillis()));
        call(() -> backend.lock(toInt(pid), (int) ms));
    }

    @Override
    public void checkpoint(long pid) throws GpuCheckpointException {
        call(() -> backend.checkpoint(toInt(pid)));
    }

    @Override
    public void restore(long pid) throws GpuCheckpointException {
        restore(pid, List.of());
    }

    /** Restores onto other GPUs: every GPU the process was checkpointed on must appear in the pairs (driver >= 580). */
    public void restore(long pid, List<GpuPair> gpuPairs) throws GpuCheckpointException {
        call(() -> backend.restore(toInt(pid), gpuPairs));
    }

    @Override
    public void unlock(long pid) throws GpuCheckpointException {
        call(() -> backend.unlock(toInt(pid)));
    }

    @Override
    public GpuProcessState state(long pid) throws GpuCheckpointException {
        try {
            return GpuProcessState.valueOf(backend.state(toInt(pid)).name());
        } catch (CudaException e) {
            throw new GpuCheckpointException(e.getMessage(), e);
        }
    }

    @Override
    public List<GpuInfo> gpus() {
        if (driver.isEmpty()) {
            return List.of();
        }
        CudaDriver d = driver.get();
        List<GpuInfo> gpus = new ArrayList<>();
        String version = CudaDriver.formatVersion(d.driverVersion());
        for (int i = 0; i < d.deviceCount(); i++) {
            gpus.add(new GpuInfo(i, GpuPair.formatUuid(d.deviceUuid(i)), d.deviceName(i), version));
        }
        return gpus;
    }

    private interface Step {
        void run();
    }

    private static void call(Step step) throws GpuCheckpointException {
        try {
            step.run();
        } catch (CudaException e) {
            throw new GpuCheckpointException(e.getMessage(), e);
        }
    }

    private static int toInt(long pid) {
        if (pid <= 0 || pid > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("not a process id: " + pid);
        }
        return (int) pid;
    }
}
