package io.vllmsnap.agent.container;

import io.vllmsnap.agent.jobs.JobFailedException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The pod's IPv4 address as seen from the host: the local, non-loopback address of the network namespace a process
 * lives in, read from that namespace's routing trie ({@code /proc/PID/net/fib_trie}). The agent reaches the vLLM
 * server of a container there (sleep, wake) without entering its namespaces.
 */
final class PodAddress {

    private PodAddress() {
    }

    static String of(long pid) {
        Path trie = Path.of("/proc", Long.toString(pid), "net", "fib_trie");
        try {
            return parse(Files.readAllLines(trie)).orElseThrow(() -> new JobFailedException("PodAddressUnknown",
                    "the network namespace of process " + pid + " has no IPv4 address besides loopback"));
        } catch (IOException e) {
            throw new JobFailedException("PodAddressUnknown", "cannot read " + trie + ": " + e.getMessage(), e);
        }
    }

    /** An address line ({@code |-- a.b.c.d}) directly followed by {@code /32 host LOCAL} is a local address. */
    static java.util.Optional<String> parse(List<String> lines) {
        for (int i = 0; i + 1 < lines.size(); i++) {
            String line = lines.get(i).trim();
            if (line.startsWith("|-- ") && lines.get(i + 1).contains("/32 host LOCAL")) {
                String address = line.substring(4).trim();
                if (!address.startsWith("127.")) {
                    return java.util.Optional.of(address);
                }
            }
        }
        return java.util.Optional.empty();
    }
}
