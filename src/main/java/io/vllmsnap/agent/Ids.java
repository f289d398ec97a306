package io.vllmsnap.agent;

import java.util.regex.Pattern;

/**
 * Validates every identifier a caller sends before it is used to name a file or find a process. Only IDs are
 * accepted, never paths: anything outside these shapes (slashes, dots, uppercase, too long) is refused.
 */
public final class Ids {

    private static final Pattern DNS_LABEL = Pattern.compile("[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?");
    private static final Pattern UID = Pattern.compile("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
    private static final Pattern HEX_ID = Pattern.compile("[0-9a-f]{64}");

    private Ids() {
    }

    /** Namespace, image, job and container names: RFC 1123 labels (lowercase, digits, '-', at most 63). */
    public static String dnsLabel(String field, String value) {
        if (value == null || !DNS_LABEL.matcher(value).matches()) {
            throw new InvalidIdException(field, value, "must be a DNS label (lowercase letters, digits and '-', 1-63 characters)");
        }
        return value;
    }

    /** A Kubernetes object UID (lowercase UUID). */
    public static String uid(String field, String value) {
        if (value == null || !UID.matcher(value).matches()) {
            throw new InvalidIdException(field, value, "must be a Kubernetes UID (lowercase UUID)");
        }
        return value;
    }

    /**
     * A runtime container ID as pod status reports it ({@code containerd://<64 hex>}, {@code cri-o://<64 hex>}) or the
     * bare 64-hex ID.
     */
    public static ContainerRef containerId(String field, String value) {
        if (value == null) {
            throw new InvalidIdException(field, null, "is required");
        }
        String runtime = "";
        String id = value;
        int sep = value.indexOf("://");
        if (sep >= 0) {
            runtime = value.substring(0, sep);
            id = value.substring(sep + 3);
            if (!runtime.equals("containerd") && !runtime.equals("cri-o") && !runtime.equals("docker")) {
                throw new InvalidIdException(field, value, "has an unknown runtime prefix (containerd://, cri-o:// or docker://)");
            }
        }
        if (!HEX_ID.matcher(id).matches()) {
            throw new InvalidIdException(field, value, "must be a 64-character lowercase hex container ID");
        }
        return new ContainerRef(runtime, id);
    }

    /** A container ID split into the runtime that made it (may be empty) and its hex ID. */
    public record ContainerRef(String runtime, String id) {
    }
}
