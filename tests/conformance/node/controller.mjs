// A small controller on @kubernetes/client-node: an informer on the ConfigMaps of one namespace,
// and a merge patch that copies each ConfigMap's data.want into its annotation "seen".
// It knows the cluster only through KUBECONFIG (the kubeconfig `replay-tui record` writes), and
// prints one JSON line per request it makes itself, so a test can count them independently.
//
//   node controller.mjs NAMESPACE
import * as k8s from '@kubernetes/client-node';

const namespace = process.argv[2];
const kc = new k8s.KubeConfig();
kc.loadFromDefault();
const core = kc.makeApiClient(k8s.CoreV1Api);
const say = (line) => process.stdout.write(JSON.stringify(line) + '\n');
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

const informer = k8s.makeInformer(kc, `/api/v1/namespaces/${namespace}/configmaps`,
    () => core.listNamespacedConfigMap({ namespace }));

async function reconcile(cm) {
    const want = cm.data?.want;
    if (want === undefined || cm.metadata?.annotations?.seen === want) {
        return;
    }
    const name = cm.metadata.name;
    say({ request: 'patch', name, want });
    try {
        await core.patchNamespacedConfigMap(
            { name, namespace, body: { metadata: { annotations: { seen: want } } } }, mergePatch);
    } catch (err) {
        say({ error: String(err?.code ?? err), name });
    }
}

informer.on('add', reconcile);
informer.on('update', reconcile);
informer.on('error', (err) => {
    say({ informer_error: String(err?.message ?? err) });
});

let stopping = false;
process.on('SIGTERM', async () => {
    if (stopping) return;
    stopping = true;
    await informer.stop();
    say({ stopped: true });
    process.exit(0);
});

await informer.start();
say({ started: true, namespace });
