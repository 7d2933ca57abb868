"""Models without a configured provider are not listed as servable, and `policyd check` warns."""

from __future__ import annotations

from policyd.cli.main import main
from policyd.v1 import policyd_pb2 as pb

POLICY = """
providers:
  simulated: {kind: simulated, latency_scale: 0}
models:
  orphan-7b:
    provider: nowhere
    upstream: orphan-7b
    input_usd_per_mtok: 0.1
    output_usd_per_mtok: 0.2
    context_window: 8192
    license: apache-2.0
    tags: [coding]
policies:
  default:
    rules:
      - name: rest
        plan: {strategy: single, params: {model: gpt-oss-120b}}
"""


async def test_list_models_omits_a_model_whose_provider_is_not_configured(live):
    _, _, stub = await live(POLICY)
    servable = (await stub.ListModels(pb.ListModelsRequest())).models
    everything = (await stub.ListModels(pb.ListModelsRequest(include_unservable=True))).models

    assert "orphan-7b" not in {m.id for m in servable}
    assert all(m.unservable_reason == "" for m in servable)
    [orphan] = [m for m in everything if m.id == "orphan-7b"]
    assert orphan.unservable_reason == "provider 'nowhere' is not configured"
    assert len(everything) == len(servable) + 1
    coding = (await stub.ListModels(pb.ListModelsRequest(tag="coding", include_unservable=True))).models
    assert "orphan-7b" in {m.id for m in coding}


def test_policyd_check_warns_about_unservable_models(write_config, capsys):
    path = write_config(POLICY)
    assert main(["check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert f"{path}: OK" in out
    assert err == "warning: model 'orphan-7b': provider 'nowhere' is not configured; ListModels omits it\n"
