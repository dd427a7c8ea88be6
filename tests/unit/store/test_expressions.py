"""Update expressions built in parts (store/expressions.py): two stores' changes to one item make one UpdateItem."""

from __future__ import annotations

from llm_gateway.store.expressions import Update


def test_two_parts_make_one_update_with_every_clause_and_condition() -> None:
    ledger = Update(
        names={"#day": "budget_day_22"},
        values={":tokens": {"N": "10"}},
        sets=["tenant = :tenant"],
        adds=["#day :tokens"],
        conditions=["(attribute_not_exists(#day) OR #day <= :cap)"],
    )
    rooms = Update(names={"#l_open": "r_ab"}, values={":l_open": {"S": "10 0 1 abc123"}}, sets=["#l_open = :l_open"])
    rooms.adds.append("Labc123t :l_tokens")
    rooms.removes.append("Lfed321t")
    rooms.conditions.append("Labc123t >= :l_need")
    request = ledger.plus(rooms).request("usage", {"key_id": {"S": "key_a"}})
    assert request["UpdateExpression"] == (
        "SET tenant = :tenant, #l_open = :l_open ADD #day :tokens, Labc123t :l_tokens REMOVE Lfed321t"
    )
    assert request["ConditionExpression"] == "(attribute_not_exists(#day) OR #day <= :cap) AND Labc123t >= :l_need"
    assert request["ExpressionAttributeNames"] == {"#day": "budget_day_22", "#l_open": "r_ab"}
    assert set(request["ExpressionAttributeValues"]) == {":tokens", ":l_open"}
    assert ledger.sets == ["tenant = :tenant"]  # the parts themselves are left as they were


def test_a_part_without_names_values_or_conditions_leaves_them_out() -> None:
    request = Update(adds=["t :x"]).request("usage", {"key_id": {"S": "k"}})
    assert request == {"TableName": "usage", "Key": {"key_id": {"S": "k"}}, "UpdateExpression": "ADD t :x"}
