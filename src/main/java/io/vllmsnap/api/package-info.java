/**
 * Kubernetes API of vllmsnap: the {@code VllmSnapshot} and {@code VllmRestore} custom resources of group
 * {@code vllmsnap.io}, version {@code v1alpha1}. The CRD YAML under {@code crds/} is generated from these classes.
 */
package io.vllmsnap.api;
