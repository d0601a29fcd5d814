package alerter

// EpisodeID is episodeID, for tests that stand in for another replica.
var EpisodeID = episodeID

// ViewsAsOf is viewsAsOf, for its table test.
var ViewsAsOf = viewsAsOf
