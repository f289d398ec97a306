package io.vllmsnap.agent.container;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class PodAddressTest {

    @Test
    void findsTheLocalNonLoopbackAddress() {
        List<String> trie = List.of(
                "Main:", "  +-- 0.0.0.0/0 3 0 5", "     |-- 0.0.0.0", "        /0 universe UNICAST",
                "     +-- 127.0.0.0/8 2 0 2", "           |-- 127.0.0.1", "              /32 host LOCAL",
                "     +-- 10.252.7.0/30 2 0 2", "           |-- 10.252.7.0", "              /30 link UNICAST",
                "           |-- 10.252.7.2", "              /32 host LOCAL",
                "        |-- 10.252.7.3", "           /32 link BROADCAST");

        assertThat(PodAddress.parse(trie)).contains("10.252.7.2");
        assertThat(PodAddress.parse(trie.subList(0, 7))).isEmpty();
    }

    /** An IPv6-only pod (main built http://fd00::5:8000, which is no URL): the global address, skipping the rest. */
    @Test
    void findsTheGlobalIpv6AddressOfAnIpv6OnlyPod() {
        List<String> inet6 = List.of(
                "00000000000000000000000000000001 01 80 10 80       lo",
                "fe80000000000000a8c1abfffe2b3c4d 02 40 20 80     eth0",
                "fd000000000000000000000000000009 02 40 00 40     eth0",
                "fd000000000000000000000000000007 02 40 00 20     eth0",
                "fd000000000000000000000000000005 02 40 00 80     eth0");

        assertThat(PodAddress.parseInet6(inet6)).contains("fd00::5");
        assertThat(PodAddress.parseInet6(inet6.subList(0, 4))).as("loopback, link-local, tentative, deprecated").isEmpty();
        assertThat(PodAddress.parseInet6(List.of("20010db8000000010000000000000001 03 40 00 80 eth0"))).contains("2001:db8:0:1::1");
        assertThat(PodAddress.parseInet6(List.of("20010db8000000000001000000000001 03 40 00 80 eth0"))).contains("2001:db8::1:0:0:1");
    }

    /** For real: a network namespace with only an IPv6 address gets a URL with a bracketed host that connects. */
    @Test
    void anIpv6OnlyNamespaceIsReachedAtABracketedHost() throws Exception {
        String ns = "vsnap-v6-" + ProcessHandle.current().pid();
        run("ip", "netns", "add", ns);
        Process sleeper = null;
        try {
            run("ip", "-n", ns, "link", "set", "lo", "up");
            run("ip", "-n", ns, "link", "add", "v6a", "type", "veth", "peer", "name", "v6b");
            run("ip", "-n", ns, "link", "set", "v6a", "up");
            run("ip", "-n", ns, "link", "set", "v6b", "up");
            run("ip", "-n", ns, "-6", "addr", "add", "fd00:10::5/64", "dev", "v6a", "nodad");
            sleeper = new ProcessBuilder("ip", "netns", "exec", ns, "sleep", "30").start();
            long pid = sleeper.pid();
            // ip netns exec execs sleep in the same process: wait until it is in the namespace
            org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(10)).until(() ->
                    java.nio.file.Files.readString(java.nio.file.Path.of("/proc/" + pid + "/net/if_inet6")).contains("fd0000100000"));
            String host = PodAddress.of(pid);
            assertThat(host).isEqualTo("[fd00:10::5]");
            assertThat(java.net.URI.create("http://" + host + ":8000/health").getHost()).isEqualTo("[fd00:10::5]");
        } finally {
            if (sleeper != null) {
                sleeper.destroyForcibly().waitFor();
            }
            run("ip", "netns", "delete", ns);
        }
    }

    private static void run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        if (!p.waitFor(30, java.util.concurrent.TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException(String.join(" ", cmd) + " timed out");
        }
        assertThat(p.exitValue()).as(String.join(" ", cmd) + ": " + new String(p.getInputStream().readAllBytes())).isZero();
    }
}
