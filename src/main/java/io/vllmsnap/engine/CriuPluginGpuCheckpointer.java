package io.vllmsnap.engine;

import java.time.Duration;
import java.util.List;

/**
 * For snapshots whose GPU steps CRIU's own CUDA plugin does inside {@code criu dump} and {@code criu restore} (the
 * plugin locks and checkpoints before the memory dump, restores and unlocks before the restored tree runs): the engine
 * keeps finding the CUDA processes, refusing what cannot be checkpointed and recording the GPUs, but moves no GPU state
 * itself. After a restore it checks that the plugin left each process running: CRIU reports a failed plugin restore
 * only in its log, and a process still locked would hang at its first CUDA call.
 */
public final class CriuPluginGpuCheckpointer implements GpuCheckpointer {
    private final GpuCheckpointer driver;

    /** {@code driver}: the node's checkpointer, asked only which processes use CUDA and in what state they are. */
    public CriuPluginGpuCheckpointer(GpuCheckpointer driver) {
        this.driver = driver;
    }

    @Override
    public boolean isCudaProcess(long pid) {
        return driver.isCudaProcess(pid);
    }

    @Override
    public void checkSupported(long pid) throws GpuCheckpointException {
        driver.checkSupported(pid);
    }

    /** The plugin locks the process during {@code criu dump}. */
    @Override
    public void lock(long pid, Duration timeout) {
    }

    /** The plugin checkpoints the process during {@code criu dump}, once CRIU has frozen it. */
    @Override
    public void checkpoint(long pid) {
    }

    /** The plugin has restored and unlocked the process by the time {@code criu restore} returns: checks it did. */
    @Override
    public void restore(long pid) throws GpuCheckpointException {
        GpuProcessState state = driver.state(pid);
        if (state != GpuProcessState.RUNNING) {
            throw new GpuCheckpointException("CRIU's CUDA plugin left process " + pid + " " + state.name()
                    .toLowerCase(java.util.Locale.ROOT) + " instead of running (its errors are in CRIU's restore.log)");
        }
    }

    /** Done by the plugin with the restore. */
    @Override
    public void unlock(long pid) {
    }

    @Override
    public GpuProcessState state(long pid) throws GpuCheckpointException {
        return driver.state(pid);
    }

    @Override
    public List<GpuInfo> gpus() {
        return driver.gpus();
    }
}
