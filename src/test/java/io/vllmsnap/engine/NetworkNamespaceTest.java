package io.vllmsnap.engine;

import com.fasterxml.jackson.databind.JsonNode;
import io.vllmsnap.criu.ChildProcess;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * A source in its own network namespace (a pod's) is restored as a copy into another one (a placeholder pod's)
 * while the source keeps serving: the path the node agent takes. Namespaces are reached through veth pairs.
 */
class NetworkNamespaceTest {
    private final int net = ThreadLocalRandom.current().nextInt(2, 250);
    private final String tag = Integer.toString(net);
    private final Pod source = new Pod("vsa" + tag, "10.231." + net);
    private final Pod placeholder = new Pod("vsb" + tag, "10.232." + net);

    /** A network namespace with a veth to the host: host side .1, namespace side .2. */
    record Pod(String name, String subnet) {
        Path netns() {
            return Path.of("/run/netns", name);
        }

        String ip() {
            return subnet + ".2";
        }

        void create() throws Exception {
            ip("netns", "add", name);
            ip("link", "add", name + "h", "type", "veth", "peer", "name", name + "p");
            ip("link", "set", name + "p", "netns", name);
            ip("addr", "add", subnet + ".1/24", "dev", name + "h");
            ip("link", "set", name + "h", "up");
            ip("-n", name, "addr", "add", subnet + ".2/24", "dev", name + "p");
            ip("-n", name, "link", "set", name + "p", "up");
            ip("-n", name, "link", "set", "lo", "up");
        }

        void delete() {
            try {
                ChildProcess.run(List.of("ip", "netns", "del", name), Duration.ofSeconds(10));
                ChildProcess.run(List.of("ip", "link", "del", name + "h"), Duration.ofSeconds(10));
            } catch (Exception ignored) {
                // best effort: the veth goes with the namespace
            }
        }

        private static void ip(String... args) throws Exception {
            List<String> cmd = new java.util.ArrayList<>(List.of("ip"));
            cmd.addAll(List.of(args));
            ChildProcess.Result r = ChildProcess.run(cmd, Duration.ofSeconds(10));
            if (!r.ok()) {
                throw new IllegalStateException(String.join(" ", cmd) + ": " + r.output());
            }
        }
    }

    @BeforeEach
    void pods() throws Exception {
        source.create();
        placeholder.create();
    }

    @AfterEach
    void cleanUp() {
        source.delete();
        placeholder.delete();
    }

    @Test
    void copyIsRestoredIntoAnotherNetworkNamespaceWhileTheSourceServes() throws Exception {
        int port = 18140;
        try (EngineFixture f = new EngineFixture()) {
            StandInServer.Config c = new StandInServer.Config(port, EngineFixture.WORK.resolve("weights-64m"),
                    64 * EngineFixture.MIB, 8 * EngineFixture.MIB, 2);
            StandInServer.prepareWeights(c);
            SourceLauncher.Source src = StandInServer.start(c, Duration.ofMinutes(1), source.netns(), "0.0.0.0",
                    source.ip());
            try {
                VllmClient atSource = new VllmClient(source.ip(), port, Duration.ofSeconds(30));
                atSource.complete("in a pod", 3);
                JsonNode before = atSource.getJson("/state");

                Path image = f.newImagePath("pod");
                Manifest m = f.checkpointer.snapshot(SnapshotRequest.of(src.pid(), image, port, 0, true)
                        .withHost(source.ip()), Progress.NONE);
                assertThat(m.externalNetwork()).isNotNull();

                assertThatThrownBy(() -> f.restore(image)).isInstanceOf(EngineException.class)
                        .hasMessageContaining("own network namespace");

                RestoreRequest into = new RestoreRequest(image, RestoreRequest.DEFAULT_ROOTFS, 2, false, false,
                        Timeouts.defaults(), placeholder.netns(), placeholder.ip());
                RestoreResult r = f.restorer.restore(into, Progress.NONE);
                try {
                    VllmClient atCopy = new VllmClient(placeholder.ip(), port, Duration.ofSeconds(30));
                    JsonNode copy = atCopy.getJson("/state");
                    assertThat(copy.get("weights_sha256")).isEqualTo(before.get("weights_sha256"));
                    assertThat(copy.get("kv_sha256")).isEqualTo(before.get("kv_sha256"));
                    assertThat(copy.get("counter")).isEqualTo(before.get("counter"));
                    // both serve, independently, on the same port of their own namespaces
                    assertThat(atSource.complete("source", 1).path("vllmsnap").path("counter").asInt())
                            .isEqualTo(before.get("counter").asInt() + 1);
                    assertThat(atCopy.complete("copy", 1).path("vllmsnap").path("counter").asInt())
                            .isEqualTo(before.get("counter").asInt() + 1);
                } finally {
                    EngineFixture.stopRestored(r.pid());
                }
            } finally {
                src.stop();
            }
        }
    }
}
