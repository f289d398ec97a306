/**
 * The {@code oci} store: snapshot images as OCI artifacts in a registry, pushed and pulled with jib-core's
 * {@code RegistryClient}. Layout of one artifact ({@link io.vllmsnap.image.oci.SnapshotArtifact}): the config blob is
 * {@code manifest.json} itself, the first layer its signature, then one layer per image file, each an uncompressed
 * blob whose digest is the SHA-256 the signed manifest records, named by its {@code org.opencontainers.image.title}
 * annotation.
 */
package io.vllmsnap.image.oci;
