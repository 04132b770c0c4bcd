-- Schema v9: the analysis page (数据分析). At 1,000,000 cases, grouping the
-- cases of a district over a year took 4-6 s even with a covering index;
-- the page now reads a daily pre-aggregate that triggers keep current, and
-- two small covering indexes for what depends on the clock (overdue now)
-- or needs every value (the median response time).

-- answered_at: when the case was first answered (答复), set by the trigger
-- cases_answered_at from the timeline. Filled in for cases answered before
-- this version.
ALTER TABLE cases ADD COLUMN answered_at INTEGER;
UPDATE cases SET answered_at = (SELECT MIN(e.at) FROM case_events e WHERE e.case_id = cases.id AND e.action = 'answer');
CREATE TRIGGER cases_answered_at AFTER INSERT ON case_events
	WHEN NEW.action = 'answer'
BEGIN
	UPDATE cases SET answered_at = NEW.at WHERE id = NEW.case_id AND answered_at IS NULL;
END;

-- case_stats_daily: the cases received on one day (in Shanghai, UTC+8:
-- day = (created_at / 1e9 + 28800) / 86400) in a community, by source, kind
-- and category, counted by their current state. Merged cases (merged_into
-- set) are not counted: their complaint lives on in the case they joined.
-- n: cases; closed: state closed; open: received, dispatched, in_progress
-- or returned; due_closed: closed with a deadline; on_time: closed at or
-- before the deadline; rated: with a rating; satisfied: rated satisfied or
-- basically satisfied; answered: answered at least once; answer_secs: the
-- sum of the seconds from receipt to first answer.
CREATE TABLE case_stats_daily (
	community   TEXT NOT NULL,
	day         INTEGER NOT NULL,
	source      TEXT NOT NULL,
	kind        TEXT NOT NULL,
	category    TEXT NOT NULL,
	n           INTEGER NOT NULL DEFAULT 0,
	closed      INTEGER NOT NULL DEFAULT 0,
	open        INTEGER NOT NULL DEFAULT 0,
	due_closed  INTEGER NOT NULL DEFAULT 0,
	on_time     INTEGER NOT NULL DEFAULT 0,
	rated       INTEGER NOT NULL DEFAULT 0,
	satisfied   INTEGER NOT NULL DEFAULT 0,
	answered    INTEGER NOT NULL DEFAULT 0,
	answer_secs INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (community, day, source, kind, category)
) WITHOUT ROWID;

INSERT INTO case_stats_daily
SELECT community, (created_at / 1000000000 + 28800) / 86400, source, kind, category,
	COUNT(*), SUM(state = 'closed'), SUM(state IN ('received', 'dispatched', 'in_progress', 'returned')),
	SUM(state = 'closed' AND due_at IS NOT NULL), SUM(state = 'closed' AND closed_at <= due_at),
	SUM(rating != ''), SUM(rating IN ('satisfied', 'basically_satisfied')),
	COUNT(answered_at), COALESCE(SUM((answered_at - created_at) / 1000000000), 0)
FROM cases WHERE merged_into = '' GROUP BY 1, 2, 3, 4, 5;

-- The triggers add a case's share when it is stored and take it away when
-- it is deleted; an update takes away the old share and adds the new one.
CREATE TRIGGER case_stats_insert AFTER INSERT ON cases
	WHEN NEW.merged_into = ''
BEGIN
	INSERT INTO case_stats_daily (community, day, source, kind, category,
		n, closed, open, due_closed, on_time, rated, satisfied, answered, answer_secs)
	VALUES (NEW.community, (NEW.created_at / 1000000000 + 28800) / 86400, NEW.source, NEW.kind, NEW.category,
		1, NEW.state = 'closed', NEW.state IN ('received', 'dispatched', 'in_progress', 'returned'),
		NEW.state = 'closed' AND NEW.due_at IS NOT NULL, COALESCE(NEW.state = 'closed' AND NEW.closed_at <= NEW.due_at, 0),
		NEW.rating != '', NEW.rating IN ('satisfied', 'basically_satisfied'),
		NEW.answered_at IS NOT NULL, COALESCE((NEW.answered_at - NEW.created_at) / 1000000000, 0))
	ON CONFLICT DO UPDATE SET n = n + excluded.n, closed = closed + excluded.closed, open = open + excluded.open,
		due_closed = due_closed + excluded.due_closed, on_time = on_time + excluded.on_time, rated = rated + excluded.rated,
		satisfied = satisfied + excluded.satisfied, answered = answered + excluded.answered,
		answer_secs = answer_secs + excluded.answer_secs;
END;

CREATE TRIGGER case_stats_update AFTER UPDATE OF community, created_at, source, kind, category, state, due_at,
	closed_at, rating, answered_at, merged_into ON cases
BEGIN
	UPDATE case_stats_daily SET n = n - 1, closed = closed - (OLD.state = 'closed'),
		open = open - (OLD.state IN ('received', 'dispatched', 'in_progress', 'returned')),
		due_closed = due_closed - (OLD.state = 'closed' AND OLD.due_at IS NOT NULL),
		on_time = on_time - COALESCE(OLD.state = 'closed' AND OLD.closed_at <= OLD.due_at, 0),
		rated = rated - (OLD.rating != ''), satisfied = satisfied - (OLD.rating IN ('satisfied', 'basically_satisfied')),
		answered = answered - (OLD.answered_at IS NOT NULL),
		answer_secs = answer_secs - COALESCE((OLD.answered_at - OLD.created_at) / 1000000000, 0)
	WHERE OLD.merged_into = '' AND community = OLD.community AND day = (OLD.created_at / 1000000000 + 28800) / 86400
		AND source = OLD.source AND kind = OLD.kind AND category = OLD.category;
	INSERT INTO case_stats_daily (community, day, source, kind, category,
		n, closed, open, due_closed, on_time, rated, satisfied, answered, answer_secs)
	SELECT NEW.community, (NEW.created_at / 1000000000 + 28800) / 86400, NEW.source, NEW.kind, NEW.category,
		1, NEW.state = 'closed', NEW.state IN ('received', 'dispatched', 'in_progress', 'returned'),
		NEW.state = 'closed' AND NEW.due_at IS NOT NULL, COALESCE(NEW.state = 'closed' AND NEW.closed_at <= NEW.due_at, 0),
		NEW.rating != '', NEW.rating IN ('satisfied', 'basically_satisfied'),
		NEW.answered_at IS NOT NULL, COALESCE((NEW.answered_at - NEW.created_at) / 1000000000, 0)
	WHERE NEW.merged_into = ''
	ON CONFLICT DO UPDATE SET n = n + excluded.n, closed = closed + excluded.closed, open = open + excluded.open,
		due_closed = due_closed + excluded.due_closed, on_time = on_time + excluded.on_time, rated = rated + excluded.rated,
		satisfied = satisfied + excluded.satisfied, answered = answered + excluded.answered,
		answer_secs = answer_secs + excluded.answer_secs;
END;

CREATE TRIGGER case_stats_delete AFTER DELETE ON cases
	WHEN OLD.merged_into = ''
BEGIN
	UPDATE case_stats_daily SET n = n - 1, closed = closed - (OLD.state = 'closed'),
		open = open - (OLD.state IN ('received', 'dispatched', 'in_progress', 'returned')),
		due_closed = due_closed - (OLD.state = 'closed' AND OLD.due_at IS NOT NULL),
		on_time = on_time - COALESCE(OLD.state = 'closed' AND OLD.closed_at <= OLD.due_at, 0),
		rated = rated - (OLD.rating != ''), satisfied = satisfied - (OLD.rating IN ('satisfied', 'basically_satisfied')),
		answered = answered - (OLD.answered_at IS NOT NULL),
		answer_secs = answer_secs - COALESCE((OLD.answered_at - OLD.created_at) / 1000000000, 0)
	WHERE community = OLD.community AND day = (OLD.created_at / 1000000000 + 28800) / 86400
		AND source = OLD.source AND kind = OLD.kind AND category = OLD.category;
END;

-- Overdue now (open, past the deadline) among the cases received in a
-- period, per community, from the index alone.
CREATE INDEX cases_community_due_created ON cases (community, due_at, created_at)
	WHERE state IN ('received', 'dispatched', 'in_progress', 'returned');
-- The median time from receipt to first answer.
CREATE INDEX cases_answer_time ON cases (community, created_at, answered_at)
	WHERE answered_at IS NOT NULL AND merged_into = '';
