package io.vllmsnap.image.oci;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.regex.Pattern;

/**
 * Where and how to reach the registry. Images go to repository {@code <repositoryPrefix>/<namespace>}, tagged with
 * the image's name.
 *
 * @param registry          {@code host} or {@code host:port}, no scheme
 * @param repositoryPrefix  path inside the registry, e.g. {@code vllmsnap/snapshots}
 * @param username          from the registry Secret; null for an anonymous registry
 * @param password          from the registry Secret
 * @param caCertificatesPem extra CA certificates (PEM) the registry's TLS certificate may chain to; null for the JDK's
 * @param insecureLoopback  allow plain HTTP or unverified TLS, and only to a loopback registry (tests, a node-local
 *                          mirror); refused for any other host
 * @param parallelism       blobs transferred at once
 */
public record OciStoreConfig(String registry, String repositoryPrefix, String username, String password,
                             byte[] caCertificatesPem, boolean insecureLoopback, int parallelism) {

    private static final Pattern PATH = Pattern.compile("[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
            + "(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*");
    private static final Pattern REGISTRY = Pattern.compile("(\\[[0-9a-fA-F:]+]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?");

    public OciStoreConfig {
        if (registry == null || !REGISTRY.matcher(registry).matches()) {
            throw new IllegalArgumentException("registry must be host or host:port, not '" + registry + "'");
        }
        if (repositoryPrefix == null || !PATH.matcher(repositoryPrefix).matches()) {
            throw new IllegalArgumentException("repositoryPrefix must be a lowercase repository path, not '"
                    + repositoryPrefix + "'");
        }
        if ((username == null) != (password == null)) {
            throw new IllegalArgumentException("username and password go together");
        }
        if (insecureLoopback && !isLoopback(host(registry))) {
            throw new IllegalArgumentException("insecure registry access is allowed only to a loopback address, not "
                    + registry);
        }
        if (parallelism < 1) {
            throw new IllegalArgumentException("parallelism must be at least 1");
        }
    }

    /** A registry over verified TLS with the JDK's trust. */
    public static OciStoreConfig of(String registry, String repositoryPrefix) {
        return new OciStoreConfig(registry, repositoryPrefix, null, null, null, false, 4);
    }

    public OciStoreConfig withCredentials(String user, String pass) {
        return new OciStoreConfig(registry, repositoryPrefix, user, pass, caCertificatesPem, insecureLoopback,
                parallelism);
    }

    public OciStoreConfig withCaCertificates(byte[] pem) {
        return new OciStoreConfig(registry, repositoryPrefix, username, password, pem, insecureLoopback,
                parallelism);
    }

    public OciStoreConfig withInsecureLoopback() {
        return new OciStoreConfig(registry, repositoryPrefix, username, password, caCertificatesPem, true,
                parallelism);
    }

    public OciStoreConfig withParallelism(int n) {
        return new OciStoreConfig(registry, repositoryPrefix, username, password, caCertificatesPem,
                insecureLoopback, n);
    }

    static String host(String registry) {
        if (registry.startsWith("[")) {
            return registry.substring(1, registry.indexOf(']'));
        }
        int colon = registry.lastIndexOf(':');
        return colon < 0 ? registry : registry.substring(0, colon);
    }

    static boolean isLoopback(String host) {
        if (host.equals("localhost")) {
            return true;
        }
        if (!host.matches("[0-9.]+|[0-9a-fA-F:]+")) {
            return false; // a name: no lookup decides what may be sent in the clear
        }
        try {
            return InetAddress.getByName(host).isLoopbackAddress();
        } catch (UnknownHostException e) {
            return false;
        }
    }

    @Override
    public String toString() {
        return "OciStoreConfig[registry=" + registry + ", repositoryPrefix=" + repositoryPrefix + ", username="
                + username + ", password=" + (password == null ? null : "***") + ", insecureLoopback="
                + insecureLoopback + ", parallelism=" + parallelism + "]";
    }
}
