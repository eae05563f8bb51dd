"""`pipectl package`: build the orchestrator Cloud Function bundle and print its deploy commands;
with ``--worker``, the worker service's source bundle and its `gcloud run deploy` commands."""
from __future__ import annotations

import json
import shlex

import click

from framework.commands import project_dir, target_name


@click.command("package")
@click.option("--out", "out_dir", default="dist", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the bundle (relative to the project); the bundle is <out>/pipectl-function.")
@click.option("--gcp-project", default=None, help="Google Cloud project (default: the target's 'project' in pipectl.yaml).")
@click.option("--region", default=None, help="Region (default: worker.region with --worker, else us-central1).")
@click.option("--service-account", default=None, help="Runtime service account (default: pipectl-orchestrator@PROJECT, "
              "or worker.service_account / pipectl-worker@PROJECT with --worker).")
@click.option("--worker", "worker", is_flag=True, help="Package the worker service (execution: remote) for Cloud Run instead: "
              "<out>/pipectl-worker with a Dockerfile, pinned requirements and its gcloud run deploy command.")
@click.option("--runtime", default="python311", show_default=True)
@click.option("--execute", is_flag=True, help="Run the gcloud commands instead of only printing them.")
@click.option("--json", "as_json", is_flag=True, help="Print the bundle description and commands as JSON.")
@click.pass_context
def package_cmd(ctx: click.Context, out_dir: str, gcp_project: str | None, region: str | None, service_account: str | None,
                worker: bool, runtime: str, execute: bool, as_json: bool) -> None:
    """Build the deployable orchestrator bundle (source, manifests, requirements, main.py)
    and print one `gcloud functions deploy` per phase transition (trigger topic, --retry,
    service account). Exit 0 on success, 1 on errors."""
    from framework.config import load_config
    from framework.deploy.package import build_bundle, deploy_commands, invoker_commands
    from framework.deploy.package import execute as run_commands

    root = project_dir(ctx)
    target = target_name(ctx) or "gcp"
    config = load_config(root)
    if gcp_project is None and target in config.targets:
        gcp_project = config.targets[target].settings.get("project")
    if execute and gcp_project is None:  # never deploy to the printed placeholder
        from framework.errors import ConfigError

        raise ConfigError(f"--execute needs a Google Cloud project: target '{target}' sets no 'project'",
                          hint="pass --gcp-project, or set 'project:' on the target in pipectl.yaml")
    if worker:
        return _package_worker(root, config, target, out_dir, gcp_project, region, service_account, execute, as_json)
    region = region or "us-central1"
    project = None
    if target in config.targets:  # the deployed target's prefixes name its functions and trigger topics
        from framework.backends.registry import target_project

        project = target_project(root, config.targets[target])
    bundle = build_bundle(root, out_dir, project=project)
    commands = deploy_commands(bundle, gcp_project or "YOUR_PROJECT", region, service_account, runtime, target)
    grants = invoker_commands(bundle, gcp_project or "YOUR_PROJECT", region, service_account)
    if as_json:
        click.echo(json.dumps({"bundle": bundle.to_dict(), "commands": commands, "invoker_commands": grants}, indent=2, default=str))
    else:
        click.echo(f"bundle: {bundle.path} ({bundle.files} files, content hash {bundle.content_hash})")
        for fn, cmd in zip(bundle.functions, commands):
            what = fn.transition or "sweep (deadlines, timeouts, pending triggers; ticked by the Cloud Scheduler job of `pipectl apply`)"
            click.echo(f"\n# {what}: triggered by {fn.trigger_topic}")
            parts = [" ".join(shlex.quote(p) for p in cmd[:4])] + [shlex.quote(p) for p in cmd[4:]]
            click.echo(" \\\n    ".join(parts))
        click.echo("\n# the trigger's service account may invoke each function (re-asserted on every deploy)")
        for cmd in grants:
            click.echo(" ".join(shlex.quote(p) for p in cmd))
    if execute:
        run_commands(commands + grants)
        click.echo(f"deployed {len(commands)} function(s) and granted their invoker role")


def _package_worker(root, config, target: str, out_dir: str, gcp_project: str | None, region: str | None,
                    service_account: str | None, execute: bool, as_json: bool) -> None:
    from framework.deploy.package import execute as run_commands
    from framework.deploy.worker_bundle import build_worker_bundle, worker_deploy_commands

    spec = config.target(target)
    bundle = build_worker_bundle(root, spec, out_dir)
    settings = spec.worker_settings()
    commands = worker_deploy_commands(bundle, settings, gcp_project or "YOUR_PROJECT", spec.name, region, service_account)
    if as_json:
        click.echo(json.dumps({"bundle": bundle.to_dict(), "commands": commands}, indent=2, default=str))
    else:
        size = bundle.sizing
        click.echo(f"bundle: {bundle.path} ({bundle.files} files, content hash {bundle.content_hash})")
        click.echo(f"request timeout: {size['request_timeout']}s (longest processor: {size['longest'][0]}, "
                   f"{size['longest'][1]}s; see docs/gcp.md#sizing-request-timeout-ack-deadlines-and-what-does-not-fit)")
        for note in bundle.notes:
            click.echo(f"note: {note}")
        titles = ("# the worker service (builds the bundle's Dockerfile with Cloud Build)",
                  "# the push identity may invoke it (re-asserted on every deploy)",
                  "# its URL: set it as worker.url of the target, then `pipectl --target " + spec.name + " apply`")
        for title, cmd in zip(titles, commands):
            click.echo(f"\n{title}")
            parts = [" ".join(shlex.quote(p) for p in cmd[:4])] + [shlex.quote(p) for p in cmd[4:]]
            click.echo(" \\\n    ".join(parts))
    if execute:
        run_commands(commands)
        click.echo(f"deployed {settings.service}; set worker.url to the URL above and run `pipectl --target {spec.name} apply`")
