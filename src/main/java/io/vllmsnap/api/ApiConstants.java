package io.vllmsnap.api;

/** Names shared by the CRD model, the operator and the chart. */
public final class ApiConstants {
    public static final String GROUP = "vllmsnap.io";
    public static final String VERSION = "v1alpha1";

    /** RFC 1123 label: what Kubernetes accepts for container names and what we accept for names we derive others from. */
    public static final String DNS_LABEL = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";
    /** RFC 1123 subdomain: what Kubernetes accepts for pod names. */
    public static final String DNS_SUBDOMAIN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

    /** Label on every pod a VllmRestore owns; its value is the VllmRestore's name. Also the scale selector. */
    public static final String RESTORE_LABEL = GROUP + "/restore";
    /** Label on every pod a VllmRestore owns; its value is the snapshot's name. */
    public static final String SNAPSHOT_LABEL = GROUP + "/snapshot";
    /** Label saying how a pod was brought up: {@code Restore} or {@code ColdStart}. */
    public static final String PATH_LABEL = GROUP + "/path";

    private ApiConstants() {
    }
}
