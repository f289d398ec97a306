package io.vllmsnap.engine;

import java.time.Duration;

/** For nodes without a CUDA driver: no process is a CUDA process, so the engine never calls the other methods. */
public final class NoGpuCheckpointer implements GpuCheckpointer {

    @Override
    public boolean available() {
        return true;
    }

    @Override
    public boolean isCudaProcess(long pid) {
        return false;
    }

    @Override
    public void lock(long pid, Duration timeout) throws GpuCheckpointException {
        throw unsupported(pid);
    }

    @Override
    public void checkpoint(long pid) throws GpuCheckpointException {
        throw unsupported(pid);
    }

    @Override
    public void restore(long pid) throws GpuCheckpointException {
        throw unsupported(pid);
    }

    @Override
    public void unlock(long pid) throws GpuCheckpointException {
        throw unsupported(pid);
    }

    @Override
    public GpuProcessState state(long pid) throws GpuCheckpointException {
        throw unsupported(pid);
    }

    private static GpuCheckpointException unsupported(long pid) {
        return new GpuCheckpointException("no CUDA driver on this node; process " + pid + " has no GPU state");
    }
}
