package io.vllmsnap.agent.container;

import io.vllmsnap.agent.jobs.JobFailedException;

import java.io.IOException;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;

/**
 * The pod's address as seen from the host: the local, non-loopback address of the network namespace a process lives
 * in. IPv4 is read from that namespace's routing trie ({@code /proc/PID/net/fib_trie}); a pod without one (an
 * IPv6-only cluster) is reached at its global IPv6 address from {@code /proc/PID/net/if_inet6}. IPv4 comes first on
 * dual-stack pods because vLLM listens on 0.0.0.0 unless told otherwise. The agent reaches the vLLM server of a
 * container there (sleep, wake, health, first token) without entering its namespaces.
 */
final class PodAddress {

    /** if_inet6 scope of global addresses. */
    private static final int SCOPE_GLOBAL = 0x00;
    /** Flags of addresses not usable yet or any more: DADFAILED 0x08, DEPRECATED 0x20, TENTATIVE 0x40. */
    private static final int UNUSABLE_FLAGS = 0x08 | 0x20 | 0x40;

    private PodAddress() {
    }

    /** @return the host part of a URL for the pod: {@code 10.1.2.3}, or {@code [fd00::5]} for IPv6 */
    static String of(long pid) {
        Path proc = Path.of("/proc", Long.toString(pid), "net");
        try {
            Optional<String> v4 = parse(Files.readAllLines(proc.resolve("fib_trie")));
            if (v4.isPresent()) {
                return v4.get();
            }
            Path inet6 = proc.resolve("if_inet6");
            Optional<String> v6 = Files.exists(inet6) ? parseInet6(Files.readAllLines(inet6)) : Optional.empty();
            return v6.map(a -> "[" + a + "]").orElseThrow(() -> new JobFailedException("PodAddressUnknown",
                    "the network namespace of process " + pid + " has no address besides loopback and link-local ones"));
        } catch (IOException e) {
            throw new JobFailedException("PodAddressUnknown", "cannot read the addresses of process " + pid + ": " + e.getMessage(), e);
        }
    }

    /** An address line ({@code |-- a.b.c.d}) directly followed by {@code /32 host LOCAL} is a local address. */
    static Optional<String> parse(List<String> lines) {
        for (int i = 0; i + 1 < lines.size(); i++) {
            String line = lines.get(i).trim();
            if (line.startsWith("|-- ") && lines.get(i + 1).contains("/32 host LOCAL")) {
                String address = line.substring(4).trim();
                if (!address.startsWith("127.")) {
                    return Optional.of(address);
                }
            }
        }
        return Optional.empty();
    }

    /**
     * The first global-scope IPv6 address of {@code if_inet6} (lines: 32 hex digits, interface index, prefix length,
     * scope, flags, interface name) that is neither tentative, failed duplicate detection, nor deprecated; written
     * the usual short way ({@code fd00::5}).
     */
    static Optional<String> parseInet6(List<String> lines) {
        for (String line : lines) {
            String[] f = line.trim().split("\\s+");
            if (f.length < 6 || f[0].length() != 32) {
                continue;
            }
            try {
                int scope = Integer.parseInt(f[3], 16);
                int flags = Integer.parseInt(f[4], 16);
                if (scope != SCOPE_GLOBAL || (flags & UNUSABLE_FLAGS) != 0 || f[5].equals("lo")) {
                    continue;
                }
                InetAddress address = InetAddress.getByAddress(HexFormat.of().parseHex(f[0]));
                if (address instanceof Inet6Address v6 && !v6.isLoopbackAddress() && !v6.isLinkLocalAddress()) {
                    return Optional.of(shortForm(v6));
                }
            } catch (NumberFormatException | UnknownHostException e) {
                // not a line of this format: skip it
            }
        }
        return Optional.empty();
    }

    /** RFC 5952 short form: the longest run of zero groups as "::". */
    private static String shortForm(Inet6Address address) {
        byte[] b = address.getAddress();
        int[] groups = new int[8];
        for (int i = 0; i < 8; i++) {
            groups[i] = ((b[2 * i] & 0xff) << 8) | (b[2 * i + 1] & 0xff);
        }
        int bestStart = -1;
        int bestLen = 1;
        for (int i = 0; i < 8; ) {
            if (groups[i] != 0) {
                i++;
                continue;
            }
            int j = i;
            while (j < 8 && groups[j] == 0) {
                j++;
            }
            if (j - i > bestLen) {
                bestStart = i;
                bestLen = j - i;
            }
            i = j;
        }
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            if (i == bestStart) {
                sb.append("::");
                i += bestLen - 1;
                continue;
            }
            if (!sb.isEmpty() && sb.charAt(sb.length() - 1) != ':') {
                sb.append(':');
            }
            sb.append(Integer.toHexString(groups[i]));
        }
        return sb.toString();
    }
}
