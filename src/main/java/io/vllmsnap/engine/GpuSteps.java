package io.vllmsnap.engine;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/** Runs one GPU step for every CUDA process of a tree in parallel; fails with every failing process named. */
public final class GpuSteps {
    private GpuSteps() {
    }

    public interface Step {
        void run(long pid) throws GpuCheckpointException;
    }

    public static void parallel(String what, List<Long> pids, Step step) throws EngineException {
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
            throw new EngineException("GPU " + what + " failed: " + String.join("; ", failures));
        }
    }
}
