package io.vllmsnap.api;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.generator.annotation.ValidationRule;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/** A set of vLLM replicas restored from a VllmSnapshot, scaled like a Deployment. */
@Group(ApiConstants.GROUP)
@Version(ApiConstants.VERSION)
@ShortNames("vrestore")
@AdditionalPrinterColumn(name = "Phase", jsonPath = ".status.phase", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Snapshot", jsonPath = ".spec.snapshotName", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Desired", jsonPath = ".spec.replicas", type = AdditionalPrinterColumn.Type.INTEGER)
@AdditionalPrinterColumn(name = "Ready", jsonPath = ".status.readyReplicas", type = AdditionalPrinterColumn.Type.INTEGER)
@AdditionalPrinterColumn(name = "Latency", jsonPath = ".status.lastRestoreLatency", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Age", jsonPath = ".metadata.creationTimestamp", type = AdditionalPrinterColumn.Type.DATE)
@ValidationRule(value = "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]{0,55}[a-z0-9])?$')",
        message = "name must be a DNS label of at most 57 characters (restored pods are named <name>-xxxxx)")
public class VllmRestore extends CustomResource<VllmRestoreSpec, VllmRestoreStatus> implements Namespaced {
}
