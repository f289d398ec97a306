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
}
