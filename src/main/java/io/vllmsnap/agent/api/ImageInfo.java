package io.vllmsnap.agent.api;

import java.time.Instant;

/** One complete image held by an agent. Partial images are never listed. */
public record ImageInfo(String namespace, String imageId, long sizeBytes, Instant createdAt, CompatibilityIdentity identity) {
}
