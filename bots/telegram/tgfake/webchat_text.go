package tgfake

import (
	"strings"
	"unicode/utf8"
)

// chatTexts are the web chat's own words; the bot's messages come from
// the bot, in the person's language_code.
var chatTexts = map[string]map[string]string{
	"en": {
		"bot": "bot", "refresh": "Refresh", "you_are": "you are", "empty": "No messages yet. Send /start or /login.", "start_hint": "Press Start to send the bot the link you opened.",
		"start": "Start", "send": "Send", "placeholder": "Message", "new_person": "Start again as someone else", "edited": "edited",
	},
	"ru": {
		"bot": "бот", "refresh": "Обновить", "you_are": "вы —", "empty": "Сообщений пока нет. Отправьте /start или /login.", "start_hint": "Нажмите «Запустить», чтобы передать боту открытую ссылку.",
		"start": "Запустить", "send": "Отправить", "placeholder": "Сообщение", "new_person": "Начать заново другим человеком", "edited": "изменено",
	},
	"fr": {
		"bot": "bot", "refresh": "Actualiser", "you_are": "vous êtes", "empty": "Aucun message. Envoyez /start ou /login.", "start_hint": "Appuyez sur Démarrer pour envoyer au bot le lien ouvert.",
		"start": "Démarrer", "send": "Envoyer", "placeholder": "Message", "new_person": "Recommencer en tant que quelqu’un d’autre", "edited": "modifié",
	},
	"zh-TW": {
		"bot": "機器人", "refresh": "重新整理", "you_are": "您是", "empty": "尚無訊息。請傳送 /start 或 /login。", "start_hint": "按「開始」把您開啟的連結傳給機器人。",
		"start": "開始", "send": "傳送", "placeholder": "訊息", "new_person": "以另一個人重新開始", "edited": "已編輯",
	},
}

// tr is the web chat's text key in language lang (a language_code such
// as "ru" or "zh-tw"), English when not shipped.
func tr(lang, key string) string {
	l := strings.ToLower(lang)
	switch {
	case strings.HasPrefix(l, "zh-tw"), strings.HasPrefix(l, "zh-hant"), strings.HasPrefix(l, "zh-hk"):
		l = "zh-TW"
	default:
		l, _, _ = strings.Cut(l, "-")
	}
	if t, ok := chatTexts[l][key]; ok {
		return t
	}
	return chatTexts["en"][key]
}

// initial is the first letter of a name, for the avatar.
func initial(s string) string {
	r, _ := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return "?"
	}
	return string(r)
}

func list(items ...string) []string { return items }
