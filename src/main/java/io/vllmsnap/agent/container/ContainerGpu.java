package io.vllmsnap.agent.container;

import io.vllmsnap.agent.jobs.JobFailedException;
import io.vllmsnap.engine.GpuCheckpointException;
import io.vllmsnap.engine.GpuCheckpointer;
import io.vllmsnap.engine.GpuSteps;
import io.vllmsnap.engine.EngineException;

import java.time.Duration;
import java.util.List;

/** The driver's checkpoint steps for every CUDA process of a container, run in parallel, failures named per process. */
final class ContainerGpu {

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

    private static void parallel(String what, List<Long> pids, GpuSteps.Step step) {
        try {
            GpuSteps.parallel(what, pids, step);
        } catch (EngineException e) {
            throw new JobFailedException("Gpu" + Character.toUpperCase(what.charAt(0)) + what.substring(1) + "Failed",
                    e.getMessage(), e);
        }
    }
}
