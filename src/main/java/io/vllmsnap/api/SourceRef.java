package io.vllmsnap.api;

import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;

/** The running container a snapshot is taken of. */
public class SourceRef {
    @Required
    @Pattern(ApiConstants.DNS_SUBDOMAIN)
    @JsonPropertyDescription("Name of the source pod, in the snapshot's namespace. It must be Running on a node with a vllmsnap agent.")
    public String pod;

    @Required
    @Pattern(ApiConstants.DNS_LABEL)
    @JsonPropertyDescription("Container of the pod that runs the vLLM server.")
    public String container;

    public SourceRef() {
    }

    public SourceRef(String pod, String container) {
        this.pod = pod;
        this.container = container;
    }
}
