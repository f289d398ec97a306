package io.vllmsnap.cuda;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Finds which processes of a tree hold CUDA state, so that each of them is locked and checkpointed. */
public final class CudaProcesses {
    private final ProcFs proc;

    public CudaProcesses(ProcFs proc) {
        this.proc = proc;
    }

    /** A process is a CUDA process when it maps the driver library or holds an NVIDIA device file open. */
    public boolean isCudaProcess(int pid) {
        for (String line : proc.maps(pid)) {
            if (line.contains("/libcuda.so")) {
                return true;
            }
        }
        for (String target : proc.fdTargets(pid)) {
            if (target.startsWith("/dev/nvidia")) {
                return true;
            }
        }
        return false;
    }

    /** The root and all its descendants, parents before children. */
    public List<Integer> tree(int root) {
        Map<Integer, List<Integer>> children = new HashMap<>();
        for (int pid : proc.pids()) {
            proc.parentPid(pid).ifPresent(ppid -> children.computeIfAbsent(ppid, k -> new ArrayList<>()).add(pid));
        }
        List<Integer> out = new ArrayList<>();
        if (!proc.exists(root)) {
            return out;
        }
        Deque<Integer> todo = new ArrayDeque<>(List.of(root));
        while (!todo.isEmpty()) {
            int pid = todo.removeFirst();
            out.add(pid);
            children.getOrDefault(pid, List.of()).stream().sorted().forEach(todo::addLast);
        }
        return out;
    }

    /** The CUDA processes of the tree rooted at {@code root}. */
    public List<Integer> cudaProcessesInTree(int root) {
        return tree(root).stream().filter(this::isCudaProcess).toList();
    }
}
