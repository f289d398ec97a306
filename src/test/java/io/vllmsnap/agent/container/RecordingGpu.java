package io.vllmsnap.agent.container;

import io.vllmsnap.engine.GpuCheckpointer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Stands in for the driver on machines without a GPU: the stand-in server's processes count as CUDA processes and
 * every step is recorded, so tests can check which steps the agent takes on which process, and in which order.
 */
final class RecordingGpu implements GpuCheckpointer {

    record Call(String step, long pid) {
    }

    final List<Call> calls = new CopyOnWriteArrayList<>();

    @Override
    public boolean isCudaProcess(long pid) {
        try {
            return new String(Files.readAllBytes(Path.of("/proc", Long.toString(pid), "cmdline"))).contains("server.py");
        } catch (Exception e) {
            return false;
        }
    }

    @Override
    public void lock(long pid, Duration timeout) {
        calls.add(new Call("lock", pid));
    }

    @Override
    public void checkpoint(long pid) {
        calls.add(new Call("checkpoint", pid));
    }

    @Override
    public void restore(long pid) {
        calls.add(new Call("restore", pid));
    }

    @Override
    public void unlock(long pid) {
        calls.add(new Call("unlock", pid));
    }

    @Override
    public GpuProcessState state(long pid) {
        return GpuProcessState.RUNNING;
    }

    @Override
    public List<GpuInfo> gpus() {
        return List.of(new GpuInfo(0, "GPU-test-0", "Test GPU", "580.0"));
    }

    List<String> steps() {
        return calls.stream().map(Call::step).toList();
    }
}
