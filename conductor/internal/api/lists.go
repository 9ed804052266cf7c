package api

// renderPage renders one page of a list: render gives each record's item and UUID. It returns the items and the
// UUID of the last record, the marker of the next page's link (writeList). Every list handler renders its page
// this way.
func renderPage[T any](list []T, render func(T) (item any, uuid string)) (items []any, last string) {
	items = make([]any, 0, len(list))
	for _, x := range list {
		var item any
		item, last = render(x)
		items = append(items, item)
	}
	return items, last
}
