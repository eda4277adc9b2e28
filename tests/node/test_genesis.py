import pytest

from node.genesis import GenesisError, genesis_hash, load_genesis, parse_genesis, save_genesis, validator_node_keys

from tests.node.helpers import make_genesis


def test_save_load_round_trip(tmp_path):
    genesis = make_genesis()
    path = save_genesis(tmp_path / "genesis.json", genesis)
    loaded = load_genesis(path)
    assert loaded == genesis
    assert genesis_hash(loaded) == genesis_hash(genesis)


def test_hash_ignores_layout():
    genesis = make_genesis()
    reordered = dict(reversed(list(genesis.to_dict().items())))
    assert genesis_hash(parse_genesis(reordered)) == genesis_hash(genesis)


def test_hash_changes_with_content():
    data = make_genesis().to_dict()
    data["genesis_time_ms"] += 1
    assert genesis_hash(parse_genesis(data)) != genesis_hash(make_genesis())


def test_defaults():
    genesis = make_genesis()
    assert genesis.utc_offset_minutes == 480
    assert genesis.profile == "CN"
    assert genesis.limits.tx_size_max_bytes == 65536


def test_validator_node_keys_in_rotation_order():
    data = make_genesis().to_dict()
    data["validators"] = ["m2", "m0"]
    genesis = parse_genesis(data)
    assert validator_node_keys(genesis) == (genesis.member("m2").node_key, genesis.member("m0").node_key)
    assert genesis.member_by_node_key(genesis.member("m2").node_key).member_id == "m2"


def mutate(change):
    data = make_genesis().to_dict()
    change(data)
    return data


@pytest.mark.parametrize(
    "data",
    [
        mutate(lambda d: d.update(validators=["nobody"])),
        mutate(lambda d: d.update(validators=["m0", "m0"])),
        mutate(lambda d: d["members"].append(dict(d["members"][0]))),
        mutate(lambda d: d["members"][1].update(node_key=d["members"][0]["node_key"])),
        mutate(lambda d: d["members"][1].update(client_keys=d["members"][0]["client_keys"])),
        mutate(lambda d: d["members"][0].update(role="debtor")),
        mutate(lambda d: d["members"][0].update(node_key="AB" * 32)),
        mutate(lambda d: d["members"][0].update(client_keys=["xyz"])),
        mutate(lambda d: d.update(profile="EU")),
        mutate(lambda d: d.update(genesis_time_ms="0")),
        mutate(lambda d: d.update(unknown=1)),
        mutate(lambda d: d.update(chain_id="")),
        mutate(lambda d: d.update(members=[])),
    ],
)
def test_rejects_invalid_genesis(data):
    with pytest.raises(GenesisError):
        parse_genesis(data)


def test_rejects_float_in_file(tmp_path):
    path = tmp_path / "genesis.json"
    path.write_text('{"chain_id": "x", "genesis_time_ms": 1.0}')
    with pytest.raises(GenesisError, match="float"):
        load_genesis(path)


def test_missing_file(tmp_path):
    with pytest.raises(GenesisError, match="cannot read"):
        load_genesis(tmp_path / "none.json")
