package io.vllmsnap.agent.container;

import io.vllmsnap.agent.jobs.JobFailedException;
import io.vllmsnap.engine.GpuCheckpointException;
import io.vllmsnap.engine.GpuCheckpointer;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/** The driver's checkpoint steps for every CUDA process of a container, run in parallel, failures named per process. */
final class ContainerGpu {

    interface Step {
        void run(long pid) throws GpuCheckpointException;
    }

    private final GpuCheckpointer gpu;
    private final Duration lockTimeout;

    ContainerGpu(GpuCheckpointer gpu, Duration lockTimeout) {
        this.gpu = gpu;
        this.lockTimeout = lockTimeout;
    }

    List<Long> cudaProcesses(List<Long> pids) {
        return pids.stream().filter(gpu::isCudaProcess).toList();
    }

    /** Refuses before anything is locked when a process cannot be checkpointed (MPS client, MIG, ...). */
    void checkSupported(List<Long> cuda) {
        for (long pid : cuda) {
            try {
                gpu.checkSupported(pid);
            } catch (GpuCheckpointException e) {
                throw new JobFailedException("GpuCheckpointUnsupported", "process " + pid + ": " + e.getMessage(), e);
            }
        }
    }

    void lockAndCheckpoint(List<Long> cuda) {
        parallel("lock", cuda, pid -> gpu.lock(pid, lockTimeout));
        parallel("checkpoint", cuda, gpu::checkpoint);
    }

    void restoreAndUnlock(List<Long> cuda) {
        parallel("restore", cuda, gpu::restore);
        parallel("unlock", cuda, gpu::unlock);
    }

    /** After a failed dump: give the GPU state back so the source keeps serving; the first failure is what counts. */
    void giveBack(List<Long> cuda) {
        try {
            restoreAndUnlock(cuda);
        } catch (JobFailedException ignored) {
            // best effort
        }
    }

    List<GpuCheckpointer.GpuInfo> gpus() {
        return gpu.gpus();
    }

    private static void parallel(String what, List<Long> pids, Step step) {
        if (pids.isEmpty()) {
            return;
        }
        List<String> failures = new ArrayList<>();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> futures = new ArrayList<>();
            for (long pid : pids) {
                futures.add(pool.submit(() -> {
                    step.run(pid);
                    return null;
                }));
            }
            for (int i = 0; i < futures.size(); i++) {
                try {
                    futures.get(i).get();
                } catch (ExecutionException e) {
                    failures.add("process " + pids.get(i) + ": " + e.getCause().getMessage());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    failures.add("interrupted");
                }
            }
        }
        if (!failures.isEmpty()) {
            throw new JobFailedException("Gpu" + Character.toUpperCase(what.charAt(0)) + what.substring(1) + "Failed",
                    "GPU " + what + " failed: " + String.join("; ", failures));
        }
    }
}
