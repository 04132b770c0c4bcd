package ui

import (
	_ "embed"
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
)

// The embedded fonts: subsets of Noto Sans CJK SC made by
// packaging/fonts/subset.sh (SIL Open Font License 1.1, see fonts/OFL.txt).
var (
	//go:embed fonts/NotoSansSC-Regular.otf
	fontRegular []byte
	//go:embed fonts/NotoSansSC-Bold.otf
	fontBold []byte
)

var (
	regularFont = fyne.NewStaticResource("NotoSansSC-Regular.otf", fontRegular)
	boldFont    = fyne.NewStaticResource("NotoSansSC-Bold.otf", fontBold)
)

// Palette: high contrast, readable for elderly residents.
var (
	colorBackground = color.NRGBA{0xFF, 0xFF, 0xFF, 0xFF}
	colorForeground = color.NRGBA{0x11, 0x11, 0x11, 0xFF}
	colorPrimary    = color.NRGBA{0x0B, 0x4F, 0x9C, 0xFF} // deep government blue
	colorButton     = color.NRGBA{0xE4, 0xE9, 0xF0, 0xFF}
	colorUrgent     = color.NRGBA{0xB0, 0x00, 0x0F, 0xFF}
	colorWarning    = color.NRGBA{0xFF, 0xD5, 0x4F, 0xFF}
	colorMuted      = color.NRGBA{0x44, 0x44, 0x44, 0xFF}
	colorCard       = color.NRGBA{0xF3, 0xF6, 0xFA, 0xFF}
	colorWhite      = color.NRGBA{0xFF, 0xFF, 0xFF, 0xFF}
	colorSuccess    = color.NRGBA{0x1B, 0x6E, 0x20, 0xFF} // answered, closed
)

// Theme is the kiosk's theme: light, high contrast, large text, and the
// embedded CJK font for every text style, so Chinese renders the same on
// every machine. Sizes are for a 1080×1920 portrait screen at scale 1.
type Theme struct{}

var _ fyne.Theme = Theme{}

// Color implements fyne.Theme; the variant is ignored (always light).
func (Theme) Color(n fyne.ThemeColorName, _ fyne.ThemeVariant) color.Color {
	switch n {
	case theme.ColorNameBackground:
		return colorBackground
	case theme.ColorNameForeground:
		return colorForeground
	case theme.ColorNamePrimary, theme.ColorNameFocus, theme.ColorNameHyperlink:
		return colorPrimary
	case theme.ColorNameForegroundOnPrimary, theme.ColorNameForegroundOnError:
		return colorWhite
	case theme.ColorNameButton:
		return colorButton
	case theme.ColorNameError:
		return colorUrgent
	case theme.ColorNameWarning:
		return colorWarning
	case theme.ColorNameInputBackground:
		return colorCard
	case theme.ColorNamePlaceHolder, theme.ColorNameDisabled:
		return colorMuted
	case theme.ColorNameShadow:
		return color.Transparent
	}
	return theme.DefaultTheme().Color(n, theme.VariantLight)
}

// Font implements fyne.Theme.
func (Theme) Font(s fyne.TextStyle) fyne.Resource {
	if s.Symbol {
		return theme.DefaultTheme().Font(s)
	}
	if s.Bold {
		return boldFont
	}
	return regularFont
}

// Icon implements fyne.Theme.
func (Theme) Icon(n fyne.ThemeIconName) fyne.Resource {
	return theme.DefaultTheme().Icon(n)
}

// Text sizes used by the screens beyond the theme's own.
const (
	sizeTicket  = 96
	sizeCTA     = 72
	sizeCTAHint = 34
	// keypad keys: digits as large as a phone's dialler on a 1080 px screen
	sizeKeyDigit = 72
	sizeKeyWord  = 40
	// a digit of the claim code on the setup screen
	sizeClaimDigit = 60
)

// Size implements fyne.Theme.
func (Theme) Size(n fyne.ThemeSizeName) float32 {
	switch n {
	case theme.SizeNameText:
		return 36
	case theme.SizeNameHeadingText:
		return 56
	case theme.SizeNameSubHeadingText:
		return 44
	case theme.SizeNameCaptionText:
		return 28
	case theme.SizeNamePadding:
		return 8
	case theme.SizeNameInnerPadding:
		return 16
	case theme.SizeNameInlineIcon:
		return 40
	case theme.SizeNameInputRadius, theme.SizeNameSelectionRadius:
		return 12
	case theme.SizeNameScrollBar:
		return 16
	}
	return theme.DefaultTheme().Size(n)
}
