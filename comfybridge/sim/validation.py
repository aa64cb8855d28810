"""Port of ComfyUI's validate_prompt / validate_inputs (execution.py:725-1073).

Error objects, their quirks (an inner link error filed under the *source* node, the
order in which dependent outputs are listed) and the in-place conversion of literal
values (``"64"`` -> 64) follow the original, because clients parse these bodies.
"""

from __future__ import annotations

import uuid
from typing import Any

from comfybridge.sim.catalog import Catalog
from comfybridge.sim.files import Folders
from comfybridge.sim.nodes import NODES

# Fixed tracebacks in ComfyUI's format: clients only show them, and real paths of
# the simulator would be noise.
_TB_INNER = [
    '  File "ComfyUI/execution.py", line 808, in validate_inputs\n'
    "    r = await validate_inputs(prompt_id, prompt, o_id, validated)\n",
    '  File "ComfyUI/execution.py", line 788, in validate_inputs\n'
    "    o_class_type = prompt[o_id]['class_type']\n",
]
_TB_OUTER = [
    '  File "ComfyUI/execution.py", line 1010, in validate_prompt\n'
    "    m = await validate_inputs(prompt_id, prompt, o, validated)\n",
    _TB_INNER[1],
]
_TB_SLOT = (
    '  File "ComfyUI/execution.py", line 790, in validate_inputs\n    received_type = r[val[1]]\n'
)


_BAD_LINK = "Bad linked input, must be a length-2 list of [node_id, slot_index]"


def prompt_id_of(body: dict, *, strict: bool) -> tuple[str, dict | None]:
    """The prompt id of a ``POST /prompt`` body, and the error to answer instead, if any.

    ComfyUI 0.3.64 takes any value (``str()`` of it, so ``null`` becomes "None"). Newer ComfyUI
    (``strict``; server.py ``post_prompt`` calling ``validate_job_id`` of
    comfy_execution/jobs.py) mints one for an absent or null id and refuses anything but a
    canonical lowercase hyphenated UUID with this 400 error.
    """
    if not strict:
        return str(body.get("prompt_id", uuid.uuid4())), None
    supplied = body.get("prompt_id")
    if supplied is None:
        return str(uuid.uuid4()), None
    try:
        if isinstance(supplied, str) and str(uuid.UUID(supplied)) == supplied:
            return supplied, None
    except ValueError:
        pass
    error = {
        "type": "invalid_prompt_id",
        "message": "prompt_id must be a valid UUID",
        "details": "prompt_id must be a UUID string in canonical lowercase hyphenated form; "
        "omit it to let the server generate one",
        "extra_info": {},
    }
    return str(supplied), error


def _type_name(ex: BaseException) -> str:
    typ = type(ex)
    if typ.__module__ == "builtins":
        return typ.__qualname__
    return f"{typ.__module__}.{typ.__qualname__}"


def _tb_for(ex: BaseException, outer: bool) -> list[str]:
    if isinstance(ex, IndexError | TypeError):
        return [(_TB_OUTER if outer else _TB_INNER)[0], _TB_SLOT]
    return list(_TB_OUTER if outer else _TB_INNER)


def validate_node_input(received_type: Any, input_type: Any) -> bool:
    if received_type == input_type:
        return True
    if not isinstance(received_type, str) or not isinstance(input_type, str):
        return False
    received = {t.strip() for t in received_type.split(",")}
    wanted = {t.strip() for t in input_type.split(",")}
    if "*" in received or "*" in wanted:
        return True
    return len(received & wanted) > 0


class Validator:
    def __init__(self, catalog: Catalog, folders: Folders):
        self.catalog = catalog
        self.folders = folders

    def validate_prompt(self, prompt: dict, partial_targets: list | None) -> tuple:
        """Returns (ok, error, good_outputs, node_errors) like ComfyUI."""
        outputs = []
        for x in prompt:
            if "class_type" not in prompt[x]:
                return (
                    False,
                    _invalid(
                        "Cannot execute because a node is missing the class_type property.", x
                    ),
                    [],
                    {},
                )
            class_type = prompt[x]["class_type"]
            if not self.catalog.has(class_type):
                return (
                    False,
                    _invalid(f"Cannot execute because node {class_type} does not exist.", x),
                    [],
                    {},
                )
            if self.catalog.is_output_node(class_type) and (
                partial_targets is None or x in partial_targets
            ):
                outputs.append(x)
        if not outputs:
            error = {
                "type": "prompt_no_outputs",
                "message": "Prompt has no outputs",
                "details": "",
                "extra_info": {},
            }
            return (False, error, [], {})

        good_outputs: list[str] = []
        errors: list[tuple[str, list]] = []
        node_errors: dict[str, dict] = {}
        validated: dict[str, tuple] = {}
        for o in outputs:
            try:
                valid, reasons, _ = self.validate_inputs(prompt, o, validated)
            except Exception as ex:
                valid = False
                reasons = [
                    {
                        "type": "exception_during_validation",
                        "message": "Exception when validating node",
                        "details": str(ex),
                        "extra_info": {
                            "exception_type": _type_name(ex),
                            "traceback": _tb_for(ex, True),
                        },
                    }
                ]
                validated[o] = (False, reasons, o)
            if valid is True:
                good_outputs.append(o)
                continue
            errors.append((o, reasons))
            for node_id, result in validated.items():
                if result[0] is not True and len(result[1]) > 0:
                    if node_id not in node_errors:
                        node_errors[node_id] = {
                            "errors": result[1],
                            "dependent_outputs": [],
                            "class_type": prompt[node_id]["class_type"],
                        }
                    node_errors[node_id]["dependent_outputs"].append(o)

        if not good_outputs:
            lines = [f"{e['message']}: {e['details']}" for _, errs in errors for e in errs]
            error = {
                "type": "prompt_outputs_failed_validation",
                "message": "Prompt outputs failed validation",
                "details": "\n".join(lines),
                "extra_info": {},
            }
            return (False, error, good_outputs, node_errors)
        return (True, None, good_outputs, node_errors)

    def validate_inputs(self, prompt: dict, unique_id: str, validated: dict) -> tuple:
        if unique_id in validated:
            return validated[unique_id]
        inputs = prompt[unique_id]["inputs"]
        class_type = prompt[unique_id]["class_type"]
        node_def = NODES[class_type]
        custom_inputs = node_def.validate_inputs if node_def.validate else ()
        errors: list[dict] = []
        valid = True

        for x, category, input_type, extra in self.catalog.ordered_inputs(class_type):
            if x not in inputs:
                if category == "required":
                    errors.append(
                        {
                            "type": "required_input_missing",
                            "message": "Required input is missing",
                            "details": f"{x}",
                            "extra_info": {"input_name": x},
                        }
                    )
                continue
            val = inputs[x]
            info = [input_type, extra]
            if isinstance(val, list):
                if len(val) != 2:
                    errors.append(
                        {
                            "type": "bad_linked_input",
                            "message": _BAD_LINK,
                            "details": f"{x}",
                            "extra_info": {
                                "input_name": x,
                                "input_config": info,
                                "received_value": val,
                            },
                        }
                    )
                    continue
                o_id = val[0]
                o_class_type = prompt[o_id]["class_type"]
                received_type = tuple(self.catalog.output_types(o_class_type))[val[1]]
                if not validate_node_input(received_type, input_type):
                    errors.append(
                        {
                            "type": "return_type_mismatch",
                            "message": "Return type mismatch between linked nodes",
                            "details": f"{x}, received_type({received_type}) "
                            f"mismatch input_type({input_type})",
                            "extra_info": {
                                "input_name": x,
                                "input_config": info,
                                "received_type": received_type,
                                "linked_node": val,
                            },
                        }
                    )
                    continue
                try:
                    r = self.validate_inputs(prompt, o_id, validated)
                    if r[0] is False:
                        valid = False
                        continue
                except Exception as ex:
                    valid = False
                    validated[o_id] = (
                        False,
                        [
                            {
                                "type": "exception_during_inner_validation",
                                "message": "Exception when validating inner node",
                                "details": str(ex),
                                "extra_info": {
                                    "input_name": x,
                                    "input_config": info,
                                    "exception_message": str(ex),
                                    "exception_type": _type_name(ex),
                                    "traceback": _tb_for(ex, False),
                                    "linked_node": val,
                                },
                            }
                        ],
                        o_id,
                    )
                    continue
            else:
                try:
                    if isinstance(val, dict) and "__value__" in val:
                        val = val["__value__"]
                        inputs[x] = val
                    if input_type == "INT":
                        val = int(val)
                        inputs[x] = val
                    if input_type == "FLOAT":
                        val = float(val)
                        inputs[x] = val
                    if input_type == "STRING":
                        val = str(val)
                        inputs[x] = val
                    if input_type == "BOOLEAN":
                        val = bool(val)
                        inputs[x] = val
                except Exception as ex:
                    errors.append(
                        {
                            "type": "invalid_input_type",
                            "message": f"Failed to convert an input value to a {input_type} value",
                            "details": f"{x}, {val}, {ex}",
                            "extra_info": {
                                "input_name": x,
                                "input_config": info,
                                "received_value": val,
                                "exception_message": str(ex),
                            },
                        }
                    )
                    continue
                if x in custom_inputs:
                    continue
                try:
                    if "min" in extra and val < extra["min"]:
                        errors.append(
                            _range_error(
                                "value_smaller_than_min",
                                f"Value {val} smaller than min of {extra['min']}",
                                x,
                                info,
                                val,
                            )
                        )
                        continue
                    if "max" in extra and val > extra["max"]:
                        errors.append(
                            _range_error(
                                "value_bigger_than_max",
                                f"Value {val} bigger than max of {extra['max']}",
                                x,
                                info,
                                val,
                            )
                        )
                        continue
                except TypeError:
                    pass
                if isinstance(input_type, list) or input_type == "COMBO":
                    options = extra.get("options", []) if input_type == "COMBO" else input_type
                    if val not in options:
                        input_config: Any = info
                        if len(options) > 20:
                            list_info = f"(list of length {len(options)})"
                            input_config = None
                        else:
                            list_info = str(options)
                        errors.append(
                            {
                                "type": "value_not_in_list",
                                "message": "Value not in list",
                                "details": f"{x}: '{val}' not in {list_info}",
                                "extra_info": {
                                    "input_name": x,
                                    "input_config": input_config,
                                    "received_value": val,
                                },
                            }
                        )
                        continue

        if node_def.validate is not None and all(
            x in inputs and not isinstance(inputs[x], list) for x in custom_inputs
        ):
            result = node_def.validate(self.folders, inputs)
            if result is not True:
                for x in custom_inputs:
                    details = f"{x}"
                    if result is not False:
                        details += f" - {result}"
                    errors.append(
                        {
                            "type": "custom_validation_failed",
                            "message": "Custom validation failed for node",
                            "details": details,
                            "extra_info": {"input_name": x},
                        }
                    )

        ret = (False, errors, unique_id) if errors or valid is not True else (True, [], unique_id)
        validated[unique_id] = ret
        return ret


def _invalid(message: str, node_id: str) -> dict:
    return {
        "type": "invalid_prompt",
        "message": message,
        "details": f"Node ID '#{node_id}'",
        "extra_info": {},
    }


def _range_error(kind: str, message: str, x: str, info: list, val: Any) -> dict:
    return {
        "type": kind,
        "message": message,
        "details": f"{x}",
        "extra_info": {"input_name": x, "input_config": info, "received_value": val},
    }
