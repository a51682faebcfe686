using System.CommandLine;
using System.Text.Json;
using PushService.Client;

namespace PushService.Pushctl.Commands;

/// <summary><c>pushctl publish news '{"headline":"hello"}'</c>: one publication through the REST API, retried with the same idempotency key.</summary>
internal static class PublishCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var channel = new Argument<string>("channel") { Description = "The channel to publish to" };
        var data = new Argument<string>("data") { Description = "The data: any JSON value, or - to read it from standard input" };
        var key = new Option<string?>("--idempotency-key") { Description = "Publish at most once for this key (retries always reuse one; a random one by default)" };
        var retries = new Option<int>("--retries")
        {
            Description = "Retries of a failed attempt (connection refused, 429, 5xx), with backoff, reusing the idempotency key",
            DefaultValueFactory = _ => 2,
        };
        retries.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() is < 0 or > 10)
            {
                result.AddError("--retries must be 0 to 10.");
            }
        });

        var command = new Command("publish", "Publish a message to a channel through the REST API (scope: publish)") { channel, data, key, retries };
        command.SetAction(async (parsed, cancellationToken) =>
        {
            var name = Cli.Channel(parsed.GetValue(channel)!);
            var json = parsed.GetValue(data)!;
            if (json == "-")
            {
                json = await Console.In.ReadToEndAsync(cancellationToken);
            }

            try
            {
                using var _ = JsonDocument.Parse(json);
            }
            catch (JsonException ex)
            {
                throw new CliException(ExitCodes.BadInput, $"the data is not JSON: {ex.Message}");
            }

            var publisher = PushPublisher.Create(parsed.GetValue(globals.Url)!, parsed.GetValue(globals.ApiKey), parsed.GetValue(retries));
            PublishResult result;
            try
            {
                result = await publisher.PublishAsync(name, json, parsed.GetValue(key), cancellationToken);
            }
            catch (PublishException ex) when (ex.Status != 0)
            {
                throw GatewayClient.Refusal(ex.Status, ex.Message[(ex.Message.IndexOf(':', StringComparison.Ordinal) + 1)..]);
            }
            catch (HttpRequestException ex)
            {
                throw new CliException(ExitCodes.Unavailable, $"cannot reach the gateway at {parsed.GetValue(globals.Url)}: {ex.Message}");
            }

            if (parsed.GetValue(globals.Json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new { channel = result.Channel, epoch = result.Epoch, offset = result.Offset }));
            }
            else
            {
                Console.WriteLine($"published to {result.Channel} at offset {result.Offset} (epoch {result.Epoch})");
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}
