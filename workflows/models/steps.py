"""What an agent job does in the browser: one step = one Steel computer action or a
navigation, with a risk label that decides whether an approval gate comes first."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Risk = Literal["none", "delete", "update", "payment"]
Point = tuple[float, float]
_STRICT = ConfigDict(extra="forbid")


class Navigate(BaseModel):
    """Open a URL in the session's browser."""

    model_config = _STRICT
    action: Literal["navigate"] = "navigate"
    url: Annotated[str, Field(pattern=r"^https?://", max_length=2048)]


class ClickMouse(BaseModel):
    """Click at a point."""

    model_config = _STRICT
    action: Literal["click_mouse"] = "click_mouse"
    coordinates: Point
    button: Literal["left", "right", "middle"] = "left"
    num_clicks: Annotated[int, Field(ge=1, le=3)] = 1


class TypeText(BaseModel):
    """Type text at the focus."""

    model_config = _STRICT
    action: Literal["type_text"] = "type_text"
    text: Annotated[str, Field(min_length=1, max_length=10_000)]


class PressKey(BaseModel):
    """Press a key combination, such as ["Control", "a"]."""

    model_config = _STRICT
    action: Literal["press_key"] = "press_key"
    keys: Annotated[list[Annotated[str, Field(min_length=1, max_length=32)]], Field(min_length=1)]


class Scroll(BaseModel):
    """Scroll by a delta, optionally at a point."""

    model_config = _STRICT
    action: Literal["scroll"] = "scroll"
    coordinates: Point | None = None
    delta_x: float = 0
    delta_y: float = 0


class MoveMouse(BaseModel):
    """Move the pointer."""

    model_config = _STRICT
    action: Literal["move_mouse"] = "move_mouse"
    coordinates: Point


class DragMouse(BaseModel):
    """Drag along a path of at least two points."""

    model_config = _STRICT
    action: Literal["drag_mouse"] = "drag_mouse"
    path: Annotated[list[Point], Field(min_length=2)]


class Wait(BaseModel):
    """Wait in the browser (up to a minute)."""

    model_config = _STRICT
    action: Literal["wait"] = "wait"
    duration: Annotated[float, Field(gt=0, le=60)]


class TakeScreenshot(BaseModel):
    """Capture the page."""

    model_config = _STRICT
    action: Literal["take_screenshot"] = "take_screenshot"


BrowserAction = Annotated[
    Navigate
    | ClickMouse
    | TypeText
    | PressKey
    | Scroll
    | MoveMouse
    | DragMouse
    | Wait
    | TakeScreenshot,
    Field(discriminator="action"),
]


class Step(BaseModel):
    """One step of a plan: an action, its risk and what it does in words."""

    model_config = _STRICT
    action: BrowserAction
    risk: Risk = "none"
    description: Annotated[str, Field(min_length=1, max_length=500)]


class StepResult(BaseModel):
    """What a step did; screenshots are blob ids, never image bytes."""

    step_index: int
    status: Literal["completed", "failed", "skipped"]
    output: str | None = None
    screenshot_blob_id: str | None = None
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        """The result as stored in ``job_steps.result``."""
        return {"output": self.output}
