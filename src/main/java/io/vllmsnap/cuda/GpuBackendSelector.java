package io.vllmsnap.cuda;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * Chooses how to reach the driver's checkpoint API on this machine: the FFM binding of libcuda.so.1 first,
 * NVIDIA's cuda-checkpoint utility on PATH second; says plainly why when neither works.
 */
public final class GpuBackendSelector {
    /** The backend chosen, and why the first choice was passed over (empty when it was not). */
    public record Selection(GpuCheckpointBackend backend, Optional<CudaDriver> driver, String note) {
    }

    private final Supplier<CudaDriver> driverLoader;
    private final Supplier<Optional<Path>> binaryFinder;
    private final CommandRunner runner;
    private final Duration commandTimeout;

    public GpuBackendSelector(Supplier<CudaDriver> driverLoader, Supplier<Optional<Path>> binaryFinder,
            CommandRunner runner, Duration commandTimeout) {
        this.driverLoader = driverLoader;
        this.binaryFinder = binaryFinder;
        this.runner = runner;
        this.commandTimeout = commandTimeout;
    }

    /** The real machine: libcuda.so.1 from the loader path, cuda-checkpoint from $PATH. */
    public static GpuBackendSelector system() {
        return new GpuBackendSelector(CudaDriver::load,
                () -> CudaCheckpointBinary.findOnPath(System.getenv("PATH")),
                CommandRunner.system(), Duration.ofMinutes(5));
    }

    /**
     * @throws CudaUnavailableException naming both reasons when no backend can be used
     */
    public Selection select() {
        String driverProblem;
        try {
            CudaDriver driver = driverLoader.get();
            if (driver.supportsCheckpoint()) {
                return new Selection(driver, Optional.of(driver), "");
            }
            driverProblem = "the NVIDIA driver (CUDA " + CudaDriver.formatVersion(driver.driverVersion())
                    + ") has no checkpoint API (needs driver 570 / CUDA 12.8 or newer)";
        } catch (CudaUnavailableException e) {
            driverProblem = e.getMessage();
        }
        Optional<Path> binary = binaryFinder.get();
        if (binary.isPresent()) {
            return new Selection(new CudaCheckpointBinary(binary.get(), runner, commandTimeout), Optional.empty(),
                    driverProblem + "; using " + binary.get() + " instead");
        }
        throw new CudaUnavailableException(driverProblem + "; and no " + CudaCheckpointBinary.BINARY
                + " on PATH to fall back on: GPU checkpointing is unavailable on this machine");
    }
}
