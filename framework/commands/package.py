"""`pipectl package`: build the orchestrator Cloud Function bundle and print its deploy commands."""
from __future__ import annotations

import json
import shlex

import click

from framework.commands import project_dir, target_name


@click.command("package")
@click.option("--out", "out_dir", default="dist", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the bundle (relative to the project); the bundle is <out>/pipectl-function.")
@click.option("--gcp-project", default=None, help="Google Cloud project (default: the target's 'project' in pipectl.yaml).")
@click.option("--region", default="us-central1", show_default=True)
@click.option("--service-account", default=None, help="Runtime service account (default: pipectl-orchestrator@PROJECT.iam.gserviceaccount.com).")
@click.option("--runtime", default="python311", show_default=True)
@click.option("--execute", is_flag=True, help="Run the gcloud commands instead of only printing them.")
@click.option("--json", "as_json", is_flag=True, help="Print the bundle description and commands as JSON.")
@click.pass_context
def package_cmd(ctx: click.Context, out_dir: str, gcp_project: str | None, region: str, service_account: str | None,
                runtime: str, execute: bool, as_json: bool) -> None:
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
    bundle = build_bundle(root, out_dir)
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
