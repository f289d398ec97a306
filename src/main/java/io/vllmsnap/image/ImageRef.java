package io.vllmsnap.image;

import java.util.regex.Pattern;

/**
 * Names one snapshot image: the namespace of its VllmSnapshot and the image's own name, both DNS labels, so neither
 * can carry a path separator, a dot segment or anything a registry tag or a file name would refuse.
 */
public record ImageRef(String namespace, String name) {

    private static final Pattern DNS_LABEL = Pattern.compile("[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?");

    public ImageRef {
        requireLabel("namespace", namespace);
        requireLabel("image name", name);
    }

    private static void requireLabel(String what, String value) {
        if (value == null || !DNS_LABEL.matcher(value).matches()) {
            throw new IllegalArgumentException(what + " must be a DNS label ([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?), not '"
                    + value + "'");
        }
    }

    @Override
    public String toString() {
        return namespace + "/" + name;
    }
}
