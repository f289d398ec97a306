package io.vllmsnap.agent.discovery;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/** What the agent reads from /proc and cgroup files about processes (root configurable for tests). */
public class ProcFs {

    static final List<String> NAMESPACE_TYPES = List.of("net", "ipc", "uts", "mnt", "pid");
    private static final Pattern NS_LINK = Pattern.compile("\\w+:\\[(\\d+)]");
    private final Path procRoot;

    public ProcFs(Path procRoot) {
        this.procRoot = procRoot;
    }

    public Path procDir(int pid) {
        return procRoot.resolve(Integer.toString(pid));
    }

    /** PIDs in a cgroup and its descendants (a container may create sub-cgroups). */
    public List<Integer> pidsInCgroup(Path cgroup) throws IOException {
        List<Integer> pids = new ArrayList<>();
        try (Stream<Path> files = Files.walk(cgroup)) {
            for (Path procs : files.filter(p -> p.getFileName().toString().equals("cgroup.procs")).toList()) {
                try {
                    for (String line : Files.readAllLines(procs)) {
                        if (!line.isBlank()) {
                            pids.add(Integer.parseInt(line.trim()));
                        }
                    }
                } catch (NoSuchFileException gone) {
                    // sub-cgroup removed while reading
                }
            }
        }
        return pids;
    }

    /** The PID chain of a process from the host's PID namespace inward ({@code NSpid:} of /proc/PID/status). */
    public List<Integer> nsPids(int pid) throws IOException {
        return intList(statusField(pid, "NSpid"));
    }

    public int parentPid(int pid) throws IOException {
        return Integer.parseInt(statusField(pid, "PPid").trim());
    }

    /** Namespace inode of a process ({@code /proc/PID/ns/TYPE -> type:[inode]}). */
    public long namespaceInode(int pid, String type) throws IOException {
        String target = Files.readSymbolicLink(procDir(pid).resolve("ns").resolve(type)).toString();
        Matcher m = NS_LINK.matcher(target);
        if (!m.matches()) {
            throw new IOException("unexpected namespace link " + target + " of pid " + pid);
        }
        return Long.parseLong(m.group(1));
    }

    public Map<String, Long> namespaces(int pid) throws IOException {
        Map<String, Long> result = new LinkedHashMap<>();
        for (String type : NAMESPACE_TYPES) {
            result.put(type, namespaceInode(pid, type));
        }
        return result;
    }

    /**
     * The container's init among its processes: the one that is PID 1 of its own PID namespace (the outermost such,
     * should the container nest PID namespaces). Falls back to the process whose parent is outside the set, for
     * containers that share a PID namespace with others.
     */
    public OptionalInt initOf(List<Integer> pids) throws IOException {
        int best = -1;
        int bestDepth = Integer.MAX_VALUE;
        for (int pid : pids) {
            List<Integer> chain;
            try {
                chain = nsPids(pid);
            } catch (NoSuchFileException exited) {
                continue;
            }
            if (chain.size() > 1 && chain.getLast() == 1 && chain.size() < bestDepth) {
                best = pid;
                bestDepth = chain.size();
            }
        }
        if (best > 0) {
            return OptionalInt.of(best);
        }
        for (int pid : pids.stream().sorted().toList()) {
            try {
                if (!pids.contains(parentPid(pid))) {
                    return OptionalInt.of(pid);
                }
            } catch (NoSuchFileException exited) {
                // gone: try the next one
            }
        }
        return OptionalInt.empty();
    }

    private String statusField(int pid, String field) throws IOException {
        for (String line : Files.readAllLines(procDir(pid).resolve("status"))) {
            if (line.startsWith(field + ":")) {
                return line.substring(field.length() + 1).trim();
            }
        }
        throw new IOException("no " + field + " in /proc/" + pid + "/status");
    }

    private static List<Integer> intList(String value) {
        List<Integer> out = new ArrayList<>();
        for (String part : value.trim().split("\\s+")) {
            if (!part.isEmpty()) {
                out.add(Integer.parseInt(part));
            }
        }
        return out;
    }
}
