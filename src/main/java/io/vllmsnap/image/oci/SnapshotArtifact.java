package io.vllmsnap.image.oci;

import com.google.cloud.tools.jib.image.json.ManifestTemplate;
import com.google.cloud.tools.jib.json.JsonTemplate;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The OCI image manifest of a snapshot image, as pushed (jib-core serializes it: private fields, nulls left out).
 * <pre>
 * mediaType    application/vnd.oci.image.manifest.v1+json
 * artifactType application/vnd.vllmsnap.snapshot.v1
 * config       application/vnd.vllmsnap.snapshot.manifest.v1+json  = manifest.json's exact bytes
 * layers[0]    application/vnd.vllmsnap.snapshot.signature.v1+json = manifest.json.sig, title "manifest.json.sig"
 * layers[1..]  application/vnd.vllmsnap.snapshot.file.v1           = one image file each, uncompressed,
 *                                                                     title = its path in the image
 * annotations  org.opencontainers.image.created, io.vllmsnap.namespace, io.vllmsnap.image
 * </pre>
 * The config carries the artifact type too, for registries older than OCI 1.1 that drop {@code artifactType}.
 * Nothing here is trusted on pull: the signature is checked over the config's bytes, and every file is fetched by
 * the digest the signed manifest records.
 */
public final class SnapshotArtifact implements ManifestTemplate {

    public static final String MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json";
    public static final String ARTIFACT_TYPE = "application/vnd.vllmsnap.snapshot.v1";
    public static final String CONFIG_MEDIA_TYPE = "application/vnd.vllmsnap.snapshot.manifest.v1+json";
    public static final String SIGNATURE_MEDIA_TYPE = "application/vnd.vllmsnap.snapshot.signature.v1+json";
    public static final String FILE_MEDIA_TYPE = "application/vnd.vllmsnap.snapshot.file.v1";
    public static final String TITLE = "org.opencontainers.image.title";

    @SuppressWarnings("unused")
    private final int schemaVersion = 2;
    @SuppressWarnings("unused")
    private final String mediaType = MANIFEST_MEDIA_TYPE;
    @SuppressWarnings("unused")
    private final String artifactType = ARTIFACT_TYPE;
    private Descriptor config;
    private final List<Descriptor> layers = new ArrayList<>();
    private final Map<String, String> annotations = new LinkedHashMap<>();

    /** One content descriptor. */
    public static final class Descriptor implements JsonTemplate {
        @SuppressWarnings("unused")
        private String mediaType;
        @SuppressWarnings("unused")
        private String digest;
        @SuppressWarnings("unused")
        private long size;
        @SuppressWarnings("unused")
        private Map<String, String> annotations;

        Descriptor(String mediaType, String digest, long size, String title) {
            this.mediaType = mediaType;
            this.digest = digest;
            this.size = size;
            this.annotations = title == null ? null : Map.of(TITLE, title);
        }

        @SuppressWarnings("unused")
        private Descriptor() {
        }
    }

    SnapshotArtifact config(String digest, long size) {
        this.config = new Descriptor(CONFIG_MEDIA_TYPE, digest, size, null);
        return this;
    }

    SnapshotArtifact layer(String mediaType, String digest, long size, String title) {
        layers.add(new Descriptor(mediaType, digest, size, title));
        return this;
    }

    SnapshotArtifact annotation(String key, String value) {
        annotations.put(key, value);
        return this;
    }

    @Override
    public int getSchemaVersion() {
        return 2;
    }

    @Override
    public String getManifestMediaType() {
        return MANIFEST_MEDIA_TYPE;
    }
}
