package io.vllmsnap.agent.container;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vllmsnap.agent.discovery.CgroupLocator;
import io.vllmsnap.engine.VllmClient;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Pods emulated with the kernel's own tools, laid out as a kubelet would on this node: each pod has a network
 * namespace ({@code ip netns}) joined to the host by a veth pair with its own address on a test-only subnet, and each
 * container a cgroup2 directory {@code kubepods/besteffort/pod<uid>/<id>} under a test-owned top cgroup. Everything
 * made here is removed in {@link #close()}.
 */
public final class EmulatedNode implements AutoCloseable {

    public static final Path CGROUP_ROOT = Path.of("/sys/fs/cgroup");
    static final Path STANDIN = Path.of("src/main/python/vllmsnap_standin/server.py").toAbsolutePath();
    public static final int PORT = 8000;

    /** Runs in the container's namespaces before the server: stdio on /dev/null, no inherited fds (as a runtime does). */
    private static final String INIT = """
            exec </dev/null >/dev/null 2>&1
            for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-"; done
            exec "$@"
            """;
    /** Joins the container's cgroup and the pod's network namespace, then runs the container's command. */
    private static final String ENTER = "echo $$ > \"$1\" && shift && exec nsenter --net=\"$1\" \"${@:2}\"";

    private final String tag = HexFormat.of().formatHex(randomBytes(3));
    private final int subnet = ThreadLocalRandom.current().nextInt(10, 250);
    private final Path top;
    private final List<Pod> pods = new ArrayList<>();
    private final List<Process> processes = new ArrayList<>();
    private final List<String> netnsNames = new ArrayList<>();

    public EmulatedNode() throws IOException {
        Path v2 = new CgroupLocator(CGROUP_ROOT).unifiedHierarchy().orElseThrow(() -> new IllegalStateException("no cgroup2"));
        top = Files.createDirectories(v2.resolve("vllmsnap-it-" + tag));
    }

    /** The test-owned top cgroup; everything below it is removed in {@link #close()}. */
    public Path topCgroup() {
        return top;
    }

    /** A pod: network namespace, its address, and the container's cgroup (created empty). */
    public record Pod(String uid, String containerId, String netns, String address, Path cgroup) {
        public String containerRef() {
            return "containerd://" + containerId;
        }

        public URI url(String path) {
            return URI.create("http://" + address + ":" + PORT + path);
        }
    }

    public Pod pod() throws IOException, InterruptedException {
        return pod(UUID.randomUUID().toString());
    }

    /** A pod with the given UID (an API server's pod UID, when a test plays the kubelet for real Pod objects). */
    public synchronized Pod pod(String uid) throws IOException, InterruptedException {
        int n = pods.size() + 1;
        String netns = "vs" + tag + n;
        String hostIf = "vs" + tag + n + "h";
        // one /30 per pod in 10.252.0.0/16, starting at a random /24 so that concurrent nodes rarely overlap
        int block = (subnet * 256 + 4 * n) % 65536;
        String hostAddr = "10.252." + (block / 256) + "." + (block % 256 + 1);
        String podAddr = "10.252." + (block / 256) + "." + (block % 256 + 2);
        run("ip", "netns", "add", netns);
        netnsNames.add(netns); // removed in close() even when setting it up fails half-way
        run("ip", "link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", netns);
        run("ip", "addr", "add", hostAddr + "/30", "dev", hostIf);
        run("ip", "link", "set", hostIf, "up");
        run("ip", "-n", netns, "addr", "add", podAddr + "/30", "dev", "eth0");
        run("ip", "-n", netns, "link", "set", "eth0", "up");
        run("ip", "-n", netns, "link", "set", "lo", "up");
        String containerId = (UUID.randomUUID() + "" + UUID.randomUUID()).replace("-", "");
        Path cgroup = Files.createDirectories(top.resolve("kubepods/besteffort/pod" + uid + "/" + containerId));
        Pod pod = new Pod(uid, containerId, netns, podAddr, cgroup);
        pods.add(pod);
        return pod;
    }

    /** Starts the stand-in vLLM server as the container of {@code pod}: PID 1 of new PID/mount/UTS/IPC namespaces. */
    public void startServer(Pod pod, Path weights, String weightsSize, String kvSize) throws Exception {
        start(pod, List.of("unshare", "--pid", "--fork", "--mount", "--mount-proc", "--uts", "--ipc",
                "setsid", "bash", "-c", INIT, "init", "python3", STANDIN.toString(), "--host", "0.0.0.0",
                "--port", Integer.toString(PORT), "--weights", weights.toString(), "--weights-size", weightsSize,
                "--kv-size", kvSize, "--compile-rounds", "2"));
        awaitHealthy(pod, Duration.ofSeconds(60));
    }

    /** Starts a placeholder container: it only holds the pod's namespaces and cgroup until a restore fills it. */
    public void startPlaceholder(Pod pod) throws Exception {
        start(pod, List.of("unshare", "--pid", "--fork", "--mount", "--mount-proc", "--uts", "--ipc",
                "setsid", "bash", "-c", INIT, "init", "sleep", "100000"));
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (procs(pod).size() < 2 && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
    }

    /** Starts {@code command} as the container of {@code pod}: PID 1 of new PID/mount/UTS/IPC namespaces, a session leader. */
    public void startContainer(Pod pod, List<String> command) throws IOException {
        List<String> container = new ArrayList<>(List.of("unshare", "--pid", "--fork", "--mount", "--mount-proc", "--uts", "--ipc",
                "setsid", "bash", "-c", INIT, "init"));
        container.addAll(command);
        start(pod, container);
    }

    private synchronized void start(Pod pod, List<String> container) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("bash", "-c", ENTER, "enter", pod.cgroup().resolve("cgroup.procs").toString(),
                "/run/netns/" + pod.netns()));
        cmd.addAll(container);
        processes.add(new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.DISCARD).start());
    }

    public static List<Integer> procs(Pod pod) throws IOException {
        return Files.readAllLines(pod.cgroup().resolve("cgroup.procs")).stream().filter(l -> !l.isBlank())
                .map(Integer::parseInt).toList();
    }

    /** Kills every process of the container at once, as the kubelet does when it removes a pod. */
    public static void kill(Pod pod) throws IOException {
        Files.writeString(pod.cgroup().resolve("cgroup.kill"), "1");
    }

    public static JsonNode get(Pod pod, String path) throws IOException, InterruptedException {
        return send(HttpRequest.newBuilder(pod.url(path)).timeout(Duration.ofSeconds(10)).GET().build());
    }

    public static JsonNode complete(Pod pod, String prompt) throws IOException, InterruptedException {
        return complete(pod, prompt, 4);
    }

    public static JsonNode complete(Pod pod, String prompt, int maxTokens) throws IOException, InterruptedException {
        return send(HttpRequest.newBuilder(pod.url("/v1/completions")).timeout(Duration.ofSeconds(10))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"" + prompt + "\",\"max_tokens\":" + maxTokens + "}"))
                .build());
    }

    public static JsonNode post(Pod pod, String path) throws IOException, InterruptedException {
        return send(HttpRequest.newBuilder(pod.url(path)).timeout(Duration.ofSeconds(10))
                .POST(HttpRequest.BodyPublishers.noBody()).build());
    }

    /**
     * The request every restore ends with (its first token). A restored copy has served it once; sending it to a
     * source left running brings the source to the state the copies are in, so the two can be compared whole.
     */
    public static JsonNode firstTokenProbe(Pod pod) throws IOException, InterruptedException {
        return complete(pod, VllmClient.FIRST_TOKEN_PROMPT, 1);
    }

    public static boolean answers(Pod pod) {
        try {
            HttpResponse<Void> r = HTTP.send(HttpRequest.newBuilder(pod.url("/health")).timeout(Duration.ofSeconds(2)).GET().build(),
                    HttpResponse.BodyHandlers.discarding());
            return r.statusCode() == 200;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private static void awaitHealthy(Pod pod, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!answers(pod)) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("stand-in server in pod " + pod.uid() + " did not answer within " + timeout);
            }
            Thread.sleep(100);
        }
    }

    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    private static final ObjectMapper JSON = new ObjectMapper();

    private static JsonNode send(HttpRequest request) throws IOException, InterruptedException {
        HttpResponse<String> r = HTTP.send(request, HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != 200) {
            throw new IOException(request.uri() + " answered " + r.statusCode() + ": " + r.body());
        }
        return JSON.readTree(r.body());
    }

    @Override
    public void close() throws Exception {
        try {
            if (Files.exists(top.resolve("cgroup.kill"))) {
                Files.writeString(top.resolve("cgroup.kill"), "1");
            }
        } catch (IOException e) {
            System.err.println("cannot kill test cgroup " + top + ": " + e.getMessage()); // go on cleaning the rest
        }
        for (Process p : processes) {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
        for (String netns : netnsNames) {
            runQuietly("ip", "netns", "del", netns);
        }
        if (Files.exists(top)) {
            List<Path> dirs;
            try (Stream<Path> s = Files.walk(top)) {
                dirs = s.filter(Files::isDirectory).sorted(Comparator.reverseOrder()).toList();
            }
            for (Path dir : dirs) {
                // killed processes may linger as zombies for a moment and keep their cgroup busy
                long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
                while (true) {
                    try {
                        Files.delete(dir);
                        break;
                    } catch (IOException e) {
                        if (System.nanoTime() > deadline) {
                            System.err.println("cannot remove test cgroup " + dir + ": " + e.getMessage());
                            break;
                        }
                        Thread.sleep(100);
                    }
                }
            }
        }
    }

    public static void run(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException(String.join(" ", cmd) + " timed out");
        }
        if (p.exitValue() != 0) {
            throw new IOException(String.join(" ", cmd) + " failed: " + new String(p.getInputStream().readAllBytes()));
        }
    }

    private static void runQuietly(String... cmd) {
        try {
            run(cmd);
        } catch (IOException e) {
            System.err.println(e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static byte[] randomBytes(int n) {
        byte[] b = new byte[n];
        ThreadLocalRandom.current().nextBytes(b);
        return b;
    }
}
