"""The debugger's palette: every colour it draws comes from the current Textual theme.

Widgets and renderers name a *role* (``"replay.verb.write"``, ``"replay.yaml.key"``),
never a colour.  Each role is a style over Textual theme variables (``bold $text-warning``,
``on $error-muted``), resolved against the theme in force and installed on the app's
console as a Rich theme, so Rich text carrying role names renders in the theme's colours,
and a theme picked at run time (ctrl+p → Theme) recolours everything.  Every built-in
theme works, light ones included, because the variables used are the ones Textual
designs for text on its own backgrounds (``$text-primary``, ``$text-muted``, ...).

With ``NO_COLOR`` set, Textual turns every colour grey; the roles that tell things apart
by colour alone (the cursor row, errors, changed fields) get an attribute as well
(reverse, bold, underline), so the screen stays usable in monochrome.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.color import Color as RichColor
from rich.style import Style
from rich.theme import Theme as RichTheme
from textual.color import Color

PREFIX = "replay."

#: role -> style over theme variables: attributes, a foreground, and "on" a background.
ROLES: dict[str, str] = {
    "text": "$foreground",
    "label": "$text-muted",
    "dim": "$text-disabled",
    "heading": "bold $text-primary",
    "object": "bold $text-secondary",
    "session": "bold $text-success",
    "accent": "bold $text-accent",
    "good": "$text-success",
    "warn": "$text-warning",
    "bad": "$text-error",
    "bad.strong": "bold $text-error",
    # the timeline
    "header": "bold $text-primary on $panel",
    "seq": "$text-muted",
    "verb.read": "$text-primary",
    "verb.create": "bold $text-success",
    "verb.write": "bold $text-warning",
    "verb.delete": "bold $text-error",
    "verb.event": "italic $text-secondary",
    "event": "$text-secondary",
    "error.row": "on $error-muted",
    "slow": "bold $text-error",
    "slowish": "$text-warning",
    "mark": "bold $text-warning",
    "cursor": "bold $block-cursor-foreground on $block-cursor-background",
    "ghost": "italic $text-muted",
    "span.0": "$text-accent",
    "span.1": "$text-primary",
    "span.2": "$text-success",
    "span.3": "$text-warning",
    "span.4": "$text-secondary",
    "span.5": "$text-error",
    # the position bar
    "live": "bold $background on $error",
    "following": "bold $background on $warning",
    "sep": "$text-muted",
    # objects as YAML, and diffs
    "yaml.key": "bold $text-primary",
    "yaml.string": "$text-success",
    "yaml.number": "$text-secondary",
    "yaml.const": "$text-accent",
    "changed": "on $warning-muted",
    "added": "on $success-muted",
    "removed": "strike $text-error",
    "removed.line": "on $error-muted",
    "added.line": "on $success-muted",
    "sign.changed": "bold $text-warning",
    "sign.added": "bold $text-success",
    "sign.removed": "bold $text-error",
    # a search in a pane (ctrl+f): every match, and the current one
    "search": "on $accent-muted",
    "search.current": "bold $background on $warning",
    # statistics
    "spark": "$text-primary",
    "spark.latency": "$text-secondary",
    "spark.errors": "$text-error",
    "spark.cursor": "bold $text-warning on $panel",
    "bar": "$primary",
}

#: What keeps a role distinct when NO_COLOR turns every colour grey.
NO_COLOR_EXTRA: dict[str, str] = {
    "cursor": "reverse",
    "error.row": "bold",
    "bad": "bold",
    "changed": "underline",
    "added": "bold",
    "spark.cursor": "reverse",
    "live": "reverse",
    "following": "reverse",
    "header": "underline",
    "search": "underline",
    "removed.line": "italic",
    "added.line": "bold",
    "search.current": "reverse",
}

_ATTRIBUTES = {"bold", "italic", "dim", "underline", "strike", "reverse"}

#: Text must read on the panes and bars (``$surface``, ``$panel``) and on the tinted rows (failed
#: ops, changed fields): the WCAG contrast ratio asked of each role on each (the README's 4.5:1).
TEXT_CONTRAST = 4.5
TINT_CONTRAST = TEXT_CONTRAST
_PLAIN_BACKGROUNDS = ("$surface", "$panel")
_TINTED_BACKGROUNDS = ("$error-muted", "$warning-muted", "$success-muted")


def role(name: str) -> str:
    """The Rich style name of a role (what renderers put on their Text)."""
    return PREFIX + name


def _color(value: str, variables: Mapping[str, str], under: Color | None) -> tuple[Color | None, bool]:
    """A theme value as a solid colour (alpha blended over ``under``) and whether to dim it.

    Values are as Textual's design system writes them: ``#RRGGBB[AA]``, ``ansi_red``,
    ``transparent``, ``auto 60%`` (readable text over the background), ``ansi_default 50%``.
    """
    while value.startswith("$"):
        value = variables.get(value[1:], "")
    parts = value.split()
    if not parts:
        return None, False
    alpha = 1.0
    if len(parts) > 1 and parts[1].endswith("%"):
        alpha = float(parts[1][:-1]) / 100
    if parts[0] == "auto":
        if under is None:
            return None, alpha < 0.75
        return under + under.get_contrast_text(alpha), False
    color = Color.parse(parts[0])
    if color.ansi is not None:  # a terminal colour: no blending; a faded one is drawn dim
        return (None if color.ansi == -1 else color), alpha < 1 or color.a < 1
    color = color.multiply_alpha(alpha)
    if color.a == 0:
        return None, False
    if color.a < 1 and under is not None:
        return under + color, False
    return color, False


def _luminance(c: Color) -> float:
    def channel(v: int) -> float:
        x = v / 255
        return x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b)


def contrast(a: Color, b: Color) -> float:
    """The WCAG contrast ratio of two colours (1 to 21)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def readable(fg: Color, backgrounds: list[tuple[Color, float]]) -> Color:
    """``fg``, moved toward black or white just enough to reach each background's ratio.

    Themes choose their text colours for their own widgets; a role drawn on a panel or a
    tinted row may need a little more.  The hue is kept as far as the contrast allows.  The
    way away from the backgrounds goes first (toward black on light ones); when it cannot
    reach the ratio (white on a mid blue cursor: 4.05:1), the other way is taken (black: 5.2:1).
    """
    if not backgrounds:
        return fg

    def worst(color: Color) -> float:
        return min(contrast(color, bg) / ratio for bg, ratio in backgrounds)

    darkest = min(backgrounds, key=lambda b: _luminance(b[0]))[0]
    lightest = max(backgrounds, key=lambda b: _luminance(b[0]))[0]
    black, white = Color(0, 0, 0), Color(255, 255, 255)
    first = black if _luminance(darkest) + _luminance(lightest) > 0.5 else white
    best = fg
    for towards in (first, white if first is black else black):
        for step in range(21):
            color = fg.blend(towards, step / 20)
            if worst(color) >= 1:
                return color
            if worst(color) > worst(best):
                best = color
    return best


def _rich(color: Color | None) -> RichColor | None:
    return None if color is None else color.rich_color


FOCUS_TINT = 0.04  # a focused pane's background: $foreground 4% over it (app.tcss, widgets.pane)


def _backgrounds(variables: Mapping[str, str]) -> list[tuple[Color, float]]:
    """The backgrounds a foreground role must read on, with the ratio asked on each: the panes and
    bars, a focused pane's tinted surface, and the tinted rows."""
    out = []
    surface, _ = _color("$surface", variables, None)
    for names, ratio in ((_PLAIN_BACKGROUNDS, TEXT_CONTRAST), (_TINTED_BACKGROUNDS, TINT_CONTRAST)):
        for name in names:
            bg, _ = _color(name, variables, surface)
            if bg is not None and bg.ansi is None:
                out.append((bg, ratio))
    foreground, _ = _color("$foreground", variables, surface)
    if surface is not None and surface.ansi is None and foreground is not None and foreground.ansi is None:
        out.append((surface.blend(foreground, FOCUS_TINT), TEXT_CONTRAST))
    return out


def resolve(spec: str, variables: Mapping[str, str], *, no_color: bool = False, extra: str = "") -> Style:
    """One role's spec (``"bold $text-warning on $panel"``) as a Rich style under these variables."""
    surface, _ = _color("$surface", variables, None)
    if surface is None:
        surface, _ = _color("$background", variables, None)
    words = spec.split()
    attrs: dict[str, bool] = {}
    fg: Color | None = None
    bg: Color | None = None
    dim = False
    i = 0
    while i < len(words):
        word = words[i]
        if word in _ATTRIBUTES:
            attrs[word] = True
        elif word == "on" and i + 1 < len(words):
            bg, _ = _color(words[i + 1], variables, surface)  # a faded terminal colour: as it is
            i += 1
        else:
            fg, faded = _color(word, variables, bg or surface)
            dim = dim or faded
        i += 1
    if fg is not None and fg.ansi is None:
        fg = readable(fg, [(bg, TEXT_CONTRAST)] if bg is not None else _backgrounds(variables))
    if dim:
        attrs["dim"] = True
    if no_color:
        for word in extra.split():
            attrs[word] = True
    return Style(color=_rich(fg), bgcolor=_rich(bg), **attrs)  # type: ignore[arg-type]


def palette(variables: Mapping[str, str], *, no_color: bool = False) -> dict[str, Style]:
    """Every role, resolved: role name -> Rich style."""
    return {name: resolve(spec, variables, no_color=no_color, extra=NO_COLOR_EXTRA.get(name, ""))
            for name, spec in ROLES.items()}


def rich_theme(variables: Mapping[str, str], *, no_color: bool = False) -> RichTheme:
    """The palette as a Rich theme for the app's console (``replay.<role>`` names)."""
    return RichTheme({role(name): style for name, style in palette(variables, no_color=no_color).items()},
                     inherit=True)
