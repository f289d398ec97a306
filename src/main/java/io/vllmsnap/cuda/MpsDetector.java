package io.vllmsnap.cuda;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Detects NVIDIA MPS: whether a control daemon or server runs on the node, and whether a given process is one
 * of its clients. The driver cannot checkpoint MPS clients, so vllmsnap refuses them before touching anything.
 */
public final class MpsDetector {
    public static final String DEFAULT_PIPE_DIRECTORY = "/tmp/nvidia-mps";
    public static final String PIPE_DIRECTORY_VARIABLE = "CUDA_MPS_PIPE_DIRECTORY";

    /** What was seen about MPS on the node. */
    public record DaemonStatus(List<Integer> daemonPids, String pipeDirectory) {
        public boolean running() {
            return !daemonPids.isEmpty();
        }
    }

    private final ProcFs proc;
    private final Map<String, String> environment;

    public MpsDetector(ProcFs proc, Map<String, String> environment) {
        this.proc = proc;
        this.environment = environment;
    }

    public static MpsDetector system() {
        return new MpsDetector(ProcFs.system(), System.getenv());
    }

    /** The pipe directory MPS uses for this process's environment (CUDA_MPS_PIPE_DIRECTORY or the default). */
    public String pipeDirectory() {
        String dir = environment.get(PIPE_DIRECTORY_VARIABLE);
        return dir == null || dir.isBlank() ? DEFAULT_PIPE_DIRECTORY : stripSlash(dir);
    }

    public DaemonStatus daemon() {
        List<Integer> pids = new ArrayList<>();
        for (int pid : proc.pids()) {
            if (proc.isZombie(pid)) {
                continue; // a daemon that quit but was not reaped yet (PID 1 reaps late on some nodes)
            }
            String exe = proc.executableName(pid);
            if (exe.equals("nvidia-cuda-mps-control") || exe.equals("nvidia-cuda-mps-server")
                    || exe.startsWith("nvidia-cuda-mps")) {
                pids.add(pid);
            }
        }
        pids.sort(null);
        return new DaemonStatus(List.copyOf(pids), pipeDirectory());
    }

    /**
     * Why the process looks like an MPS client: mappings or open files under an MPS pipe directory, unix
     * sockets bound there, or MPS shared memory. Empty when nothing points to MPS.
     */
    public List<String> clientEvidence(int pid) {
        List<String> dirs = new ArrayList<>(List.of(pipeDirectory()));
        proc.environ(pid, PIPE_DIRECTORY_VARIABLE).map(MpsDetector::stripSlash)
                .filter(d -> !d.isBlank() && !dirs.contains(d)).ifPresent(dirs::add);

        List<String> evidence = new ArrayList<>();
        for (String line : proc.maps(pid)) {
            String path = mapsPath(line);
            if (path.isEmpty()) {
                continue;
            }
            if (underAny(path, dirs) || path.contains("nvidia-mps") || path.startsWith("/dev/shm/cuda.shm")) {
                evidence.add("maps " + path);
                break;
            }
        }
        List<String> socketInodes = new ArrayList<>();
        for (String target : proc.fdTargets(pid)) {
            if (underAny(target, dirs) || target.contains("nvidia-mps")) {
                evidence.add("open file " + target);
            } else if (target.startsWith("socket:[")) {
                socketInodes.add(target.substring("socket:[".length(), target.length() - 1));
            }
        }
        if (!socketInodes.isEmpty()) {
            for (String line : proc.unixSockets(pid)) {
                String[] cols = line.trim().split("\\s+");
                if (cols.length >= 8 && socketInodes.contains(cols[6])) {
                    String path = cols[7].startsWith("@") ? cols[7].substring(1) : cols[7];
                    if (underAny(path, dirs) || path.contains("nvidia-mps")) {
                        evidence.add("unix socket " + cols[7]);
                    }
                }
            }
        }
        return evidence;
    }

    /**
     * Refuses a process that MPS serves: an MPS client, or any CUDA process while an MPS daemon runs on the
     * node. A client cannot always be told from /proc: on the H100 (driver 580) a torch client showed no MPS
     * mapping or file, and its connection to the control socket carried the socket path only on the daemon's
     * end. So while a daemon runs, any process asked about is refused: a refusal beats a half-done snapshot.
     *
     * @throws MpsClientException with the evidence found
     */
    public void requireNotMpsClient(int pid) {
        List<String> evidence = clientEvidence(pid);
        if (!evidence.isEmpty()) {
            throw new MpsClientException(pid, String.join(", ", evidence));
        }
        DaemonStatus daemon = daemon();
        if (daemon.running()) {
            throw new MpsClientException(pid, "an MPS daemon runs on this node (pids " + daemon.daemonPids()
                    + ", pipe directory " + daemon.pipeDirectory() + ") and the process may be its client");
        }
    }

    private static String mapsPath(String line) {
        // address perms offset dev inode [path]: the path starts at the sixth column and may contain spaces.
        String[] cols = line.trim().split("\\s+", 6);
        return cols.length == 6 ? cols[5].trim() : "";
    }

    private static boolean underAny(String path, List<String> dirs) {
        for (String d : dirs) {
            if (path.equals(d) || path.startsWith(d + "/")) {
                return true;
            }
        }
        return false;
    }

    private static String stripSlash(String dir) {
        String d = dir.strip();
        return d.length() > 1 && d.endsWith("/") ? d.substring(0, d.length() - 1) : d;
    }
}
