package io.vllmsnap.agent.client;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Which agent pod the operator meant to reach at an address: recorded when the address is looked up (from the pod
 * list of the API server), read when that address presents its certificate. Addresses are kept in one canonical
 * form, so {@code fd00::1}, {@code [fd00:0::1]} and {@code fd00:0:0:0:0:0:0:1} are one peer.
 */
public class AgentPeers {

    /** No per-pod names: every lookup is empty. */
    public static final AgentPeers NONE = new AgentPeers() {
        @Override
        public void record(String address, String podName) {
        }
    };

    private final Map<String, String> podByAddress = new ConcurrentHashMap<>();

    public void record(String address, String podName) {
        canonical(address).ifPresent(a -> podByAddress.put(a, podName));
    }

    public Optional<String> podAt(String address) {
        return canonical(address).map(podByAddress::get);
    }

    /** An IP literal in canonical form; anything else (a host name) is not a peer this class knows. */
    static Optional<String> canonical(String address) {
        if (address == null || address.isBlank()) {
            return Optional.empty();
        }
        String literal = address.startsWith("[") && address.endsWith("]") ? address.substring(1, address.length() - 1) : address;
        boolean ipv4 = literal.matches("\\d{1,3}(\\.\\d{1,3}){3}");
        boolean ipv6 = literal.contains(":") && literal.matches("[0-9a-fA-F:.%a-zA-Z0-9]+");
        if (!ipv4 && !ipv6) {
            return Optional.empty(); // never resolve names here: only literals, which need no lookup
        }
        try {
            return Optional.of(InetAddress.getByName(literal).getHostAddress());
        } catch (UnknownHostException e) {
            return Optional.empty();
        }
    }
}
