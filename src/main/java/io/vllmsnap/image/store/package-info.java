/**
 * Where images are kept beyond one node, behind {@link io.vllmsnap.image.store.ImageStoreBackend}: {@code node}
 * (nowhere else: today's behaviour), {@code volume} (a shared directory such as a ReadWriteMany volume) and
 * {@code oci} (a registry, in {@code image.oci}). {@link io.vllmsnap.image.store.ImagePuller} brings an image from
 * any of them into a local directory: signature first, then the files in parallel, each checked against its signed
 * digest as it streams, the result stamped as verified.
 */
package io.vllmsnap.image.store;
