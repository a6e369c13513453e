package sigv4

import "time"

// The dates of a signature are read on every request: these parsers take
// exactly what time.Parse takes with amzDateFormat and scopeDateFormat
// (FuzzAllocationFreeShortcuts compares them), without its walk through a
// generic layout.

// parseAmzDate is time.Parse(amzDateFormat, s): "yyyymmddThhmmssZ" in UTC.
// Like time.Parse it takes a fraction of a second after the seconds
// ('.' or ',' then digits, of which the first nine count), which the
// layout does not ask for.
func parseAmzDate(s string) (time.Time, bool) {
	if len(s) < len(amzDateFormat) || s[8] != 'T' {
		return time.Time{}, false
	}
	year, month, day, okDate := parseScopeDate(s[:8])
	hour, okHour := twoDigits(s[9:11])
	minute, okMinute := twoDigits(s[11:13])
	second, okSecond := twoDigits(s[13:15])
	if !okDate || !okHour || !okMinute || !okSecond || hour > 23 || minute > 59 || second > 59 {
		return time.Time{}, false
	}
	rest := s[15:]
	nsec := 0
	if len(rest) >= 2 && (rest[0] == '.' || rest[0] == ',') && isDigit(rest[1]) {
		n := 2
		for n < len(rest) && isDigit(rest[n]) {
			n++
		}
		digits := rest[1:min(n, 10)] // nanoseconds: nine digits at most
		for i := 0; i < len(digits); i++ {
			nsec = nsec*10 + int(digits[i]-'0')
		}
		for range 9 - len(digits) {
			nsec *= 10
		}
		rest = rest[n:]
	}
	if rest != "Z" {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, second, nsec, time.UTC), true
}

// parseScopeDate is time.Parse(scopeDateFormat, s): "yyyymmdd", a day
// that exists.
func parseScopeDate(s string) (year, month, day int, ok bool) {
	if len(s) != len(scopeDateFormat) {
		return 0, 0, 0, false
	}
	century, okCentury := twoDigits(s[0:2])
	decade, okDecade := twoDigits(s[2:4])
	month, okMonth := twoDigits(s[4:6])
	day, okDay := twoDigits(s[6:8])
	year = century*100 + decade
	ok = okCentury && okDecade && okMonth && okDay && 1 <= month && month <= 12 && 1 <= day && day <= daysIn(month, year)
	return year, month, day, ok
}

func twoDigits(s string) (int, bool) {
	return int(s[0]-'0')*10 + int(s[1]-'0'), isDigit(s[0]) && isDigit(s[1])
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// daysIn is the number of days of a month (1 to 12) of the Gregorian
// calendar.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
